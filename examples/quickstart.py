"""agentburn from Python: register an agent, track what it spends, flush, print the stats.

AGENTBURN_ENDPOINT: the server (unset: offline, the events wait on disk for a later run);
AGENTBURN_API_KEY: its key; AGENTBURN_BUFFER_DIR: the buffer root (unset: the default).
"""

import json
import os
import sys

from agentburn import AgentBurn


def main() -> int:
    options = {}
    if os.environ.get("AGENTBURN_BUFFER_DIR"):
        options["buffer_dir"] = os.environ["AGENTBURN_BUFFER_DIR"]
    endpoint = os.environ.get("AGENTBURN_ENDPOINT") or None  # None: offline
    api_key = os.environ.get("AGENTBURN_API_KEY") or None

    with AgentBurn(endpoint, api_key, **options) as ab:
        # Offline (or with the server down) the id is a provisional "ab-local-..." one.
        agent_id = ab.register_agent("Support Bot", project_id="onboarding", tags=["support"])
        print(f"agent {agent_id}")

        # The same keyword arguments as the AgentBurn SDK, in the API's camelCase.
        costs = [
            ("anthropic", 0.0855, dict(operation="llm_call", model="claude-3.5-sonnet",
                                       inputTokens=12500, outputTokens=3200,
                                       taskId="ticket-CTMS-5109")),
            ("github", 0.0004, dict(operation="tool_call", taskId="ticket-CTMS-5109")),
            ("e2b", 0.0021, dict(operation="compute", taskId="ticket-CTMS-5110")),
            ("serpapi", 0.005, dict(operation="api_call", taskId="ticket-CTMS-5110")),
        ]
        for provider, cost_usd, fields in costs:
            # Durable on disk when it returns; raises agentburn.AgentBurnError if refused.
            key = ab.track(provider, cost_usd, agentId=agent_id, workflowId="sprint-42", **fields)
            print(f"tracked {fields['operation']:<9} {provider:<9} ${cost_usd:.4f}  {key}")

        # False is not a failure: what was not delivered stays on disk.
        delivered = ab.flush(timeout=2.0)
        print("flush:", "all delivered" if delivered else "not all delivered; the rest waits on disk")
        print("stats:", json.dumps(ab.stats(), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
