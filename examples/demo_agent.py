"""A small fleet of AI agents that reports what it spends through agentburn.

support-bot answers customer tickets, research-agent writes market briefs, code-reviewer
reviews pull requests. Every LLM call, tool call, sandbox minute and paid API call is one
`track` call: the event is durable on local disk when `track` returns, the library's
background thread delivers it, and while the server is unreachable it waits on disk.
Nothing here waits on the network.

scripts/demo.py runs this fleet against a local agentburn-server that it stops half-way.
"""

import random

from agentburn import AgentBurn

# USD per million tokens: provider, input, output, cached input. Taken from LiteLLM's model
# price map (BerriAI/litellm, MIT licence).
LLM_PRICES = {
    "claude-sonnet-4-20250514": ("anthropic", 3.00, 15.00, 0.30),
    "claude-haiku-4-5": ("anthropic", 1.00, 5.00, 0.10),
    "gpt-4.1": ("openai", 2.00, 8.00, 0.50),
    "gpt-4o-mini": ("openai", 0.15, 0.60, 0.075),
    "o3-mini": ("openai", 1.10, 4.40, 0.55),
    "gemini-2.5-flash": ("gemini", 0.30, 2.50, 0.03),
}
# Tools, paid APIs and sandboxes: USD per call, or per sandbox minute for e2b.
UNIT_PRICES = {"tavily": 0.008, "pinecone": 0.0001, "github": 0.0, "firecrawl": 0.001,
               "twilio": 0.0079, "e2b": 0.00168}


class Agent:
    """One agent: registered once, then one `track` per call it makes."""

    def __init__(self, client: AgentBurn, name: str, project: str, description: str,
                 work, rng: random.Random) -> None:
        self.client, self.name, self.work, self.rng = client, name, work, rng
        # The server's id; with the server down, a provisional "ab-local-..." id that the
        # library replaces with the server's before delivering the events that carry it.
        self.id = client.register_agent(name, description=description, project_id=project,
                                        tags=["demo"])
        self.keys = []          # the idempotency key of every event tracked
        self.tracked_usd = 0.0  # what those events cost
        self.task = self.workflow = None  # what the agent works on now

    def _track(self, provider: str, cost: float, operation: str, **fields) -> None:
        cost = round(cost, 8)
        key = self.client.track(provider, cost, agentId=self.id, operation=operation,
                                taskId=self.task, workflowId=self.workflow, **fields)
        self.keys.append(key)
        self.tracked_usd += cost

    def llm(self, model: str, input_tokens: int, output_tokens: int, cached: int = 0,
            reasoning: int = 0) -> None:
        provider, p_in, p_out, p_cached = LLM_PRICES[model]
        cost = ((input_tokens - cached) * p_in + cached * p_cached + output_tokens * p_out) / 1e6
        fields = {"cachedInputTokens": cached} if cached else {}
        if reasoning:
            fields["reasoningTokens"] = reasoning
        self._track(provider, cost, "llm_call", model=model, inputTokens=input_tokens,
                    outputTokens=output_tokens, **fields)

    def tool(self, provider: str, tool: str) -> None:
        self._track(provider, UNIT_PRICES[provider], "tool_call", metadata={"tool": tool})

    def api(self, provider: str, endpoint: str, units: int = 1) -> None:
        self._track(provider, units * UNIT_PRICES[provider], "api_call",
                    metadata={"endpoint": endpoint, "units": units})

    def sandbox(self, minutes: float, purpose: str) -> None:
        self._track("e2b", minutes * UNIT_PRICES["e2b"], "compute",
                    metadata={"minutes": minutes, "purpose": purpose})

    def run_task(self, number: int) -> str:
        """Does one unit of work (a ticket, a brief, a review); returns its task id."""
        self.work(self, number)
        return self.task


def answer_ticket(agent: Agent, n: int) -> None:
    r = agent.rng.randint
    agent.task, agent.workflow = "TICKET-%d" % (4810 + n), "support-triage"
    agent.llm("claude-haiku-4-5", r(600, 1200), r(20, 60))                 # classify
    agent.tool("pinecone", "knowledge_base_search")
    for _ in range(r(1, 3)):                                                # draft, revise
        agent.llm("claude-sonnet-4-20250514", r(4000, 9000), r(300, 900), cached=2048)
    if agent.rng.random() < 0.3:
        agent.api("twilio", "messages.create")                              # SMS the customer
    agent.llm("gpt-4o-mini", r(1200, 2500), r(30, 80))                      # tone check


def write_brief(agent: Agent, n: int) -> None:
    r = agent.rng.randint
    agent.task, agent.workflow = "RESEARCH-%d" % (120 + n), "market-brief"
    agent.llm("gpt-4.1", r(1500, 3000), r(400, 900))                        # plan
    for _ in range(r(3, 6)):
        agent.tool("tavily", "web_search")
    for _ in range(r(2, 4)):
        agent.api("firecrawl", "scrape")
        agent.llm("gemini-2.5-flash", r(8000, 20000), r(400, 800))          # read a page
    if agent.rng.random() < 0.5:
        agent.sandbox(r(1, 6), "analyse figures")
    agent.llm("claude-sonnet-4-20250514", r(20000, 40000), r(1500, 3000))   # write


def review_pull_request(agent: Agent, n: int) -> None:
    r = agent.rng.randint
    agent.task, agent.workflow = "PR-%d" % (2290 + n), "pr-review"
    agent.tool("github", "get_diff")
    agent.sandbox(r(2, 8), "run tests")
    agent.llm("claude-sonnet-4-20250514", r(10000, 30000), r(800, 2000), cached=8192)
    reasoning = r(1000, 4000)
    agent.llm("o3-mini", r(6000, 15000), reasoning + r(200, 600), reasoning=reasoning)
    agent.tool("github", "create_review_comment")


# name, project, description, one unit of work
FLEET = [
    ("support-bot", "support", "Answers customer tickets", answer_ticket),
    ("research-agent", "research", "Writes market briefs from the web", write_brief),
    ("code-reviewer", "engineering", "Reviews pull requests", review_pull_request),
]


def hire(client: AgentBurn, name: str, rng: random.Random) -> Agent:
    """Registers the agent of FLEET called `name`."""
    for fleet_name, project, description, work in FLEET:
        if fleet_name == name:
            return Agent(client, name, project, description, work, rng)
    raise KeyError(name)
