"""status, report and events over real folders: live, killed, empty, corrupt; bad input."""

import json
import os

import pytest

from conftest import llm, snapshot

COST_GPT4O = 0.0045   # 1,000 input + 200 output tokens of gpt-4o by the compiled-in catalog


def folders_of(status_json):
    return {f["folder"]: f for f in status_json["folders"]}


def test_a_live_folder_is_read_without_disturbing_its_client(cli, root, child):
    c = child(root, "agent-live", [llm(task_id="t%d" % (i % 2)) for i in range(6)],
              after=[llm()])
    before = snapshot(root)

    st = cli("status", "--root", root, "--json")
    assert st.returncode == 0, st.stderr
    [folder] = json.loads(st.stdout)["folders"]
    assert folder["state"] == "live" and folder["alive"] and folder["pid"] == c.pid
    assert folder["pending"] == 6 and folder["deadLetters"] == 0

    rep = cli("report", "--root", root, "--by", "task", "--json")
    assert rep.returncode == 0, rep.stderr
    body = json.loads(rep.stdout)
    assert body["total"]["events"] == 6
    assert body["total"]["costUsd"] == pytest.approx(6 * COST_GPT4O, abs=1e-9)
    assert {g["key"]["task"]: g["events"] for g in body["groups"]} == {"t0": 3, "t1": 3}

    ev = cli("events", "--root", root, "--limit", "0")
    assert ev.returncode == 0, ev.stderr
    lines = [json.loads(l) for l in ev.stdout.splitlines()]
    assert len(lines) == 6 and all(e["agentId"] == "agent-live" for e in lines)

    text = cli("status", "--root", root)
    assert "pid %d (live)" % c.pid in text.stdout

    assert snapshot(root) == before          # nothing written, nothing locked
    stats = json.loads(c.finish().strip().splitlines()[-1])
    assert stats["pending"] == 7             # the client went on as if nobody had looked


def test_a_killed_process_folder_is_reported_as_gone(cli, root, child):
    c = child(root, "agent-dead", [llm() for _ in range(4)] +
              [llm(model="claude-sonnet-4-5", provider="anthropic", cost_usd=0.25)])
    c.kill()
    st = json.loads(cli("status", "--root", root, "--json").stdout)
    [folder] = st["folders"]
    assert folder["state"] == "dead" and not folder["alive"] and folder["pid"] == c.pid
    assert folder["pending"] == 5 and st["total"]["pending"] == 5

    rep = cli("report", "--root", root, "--by", "model", "--format", "csv")
    assert rep.returncode == 0, rep.stderr
    rows = [l.split(",") for l in rep.stdout.splitlines()]
    assert rows[0][:3] == ["model", "events", "costUsd"]
    by_model = {r[0]: (int(r[1]), float(r[2])) for r in rows[1:]}
    assert by_model == {"gpt-4o": (4, pytest.approx(4 * COST_GPT4O)),
                        "claude-sonnet-4-5": (1, pytest.approx(0.25))}

    day = cli("report", "--root", root, "--by", "day")
    assert day.returncode == 0 and "total" in day.stdout and "\u2588" in day.stdout


def test_the_time_range_selects_hours(cli, root, child):
    child(root, "agent-old", [llm(timestamp="2026-01-05T10:30:00Z"),
                              llm(timestamp="2026-01-06T11:00:00Z")]).kill()
    rep = cli("report", "--root", root, "--since", "2026-01-06", "--until",
              "2026-01-07", "--json")
    assert rep.returncode == 0, rep.stderr
    assert json.loads(rep.stdout)["total"]["events"] == 1
    rep = cli("report", "--root", root, "--until", "2026-01-05T11:00:00Z", "--json")
    assert json.loads(rep.stdout)["total"]["events"] == 1


def test_an_empty_or_missing_root(cli, root, tmp_path):
    st = cli("status", "--root", root)
    assert st.returncode == 0 and "no buffer folders" in st.stdout
    st = cli("status", "--root", str(tmp_path / "missing"), "--json")
    assert st.returncode == 0 and json.loads(st.stdout)["folders"] == []
    rep = cli("report", "--root", root, "--json")
    assert rep.returncode == 0 and json.loads(rep.stdout)["total"]["events"] == 0
    assert not os.path.exists(tmp_path / "missing")   # reading creates nothing


def test_a_corrupt_folder_is_named_and_the_rest_still_read(cli, root, child):
    child(root, "agent-ok", [llm()]).kill()
    bad = os.path.join(root, "p1-corrupt")
    os.mkdir(bad, 0o700)
    with open(os.path.join(bad, "CURRENT"), "w") as f:
        f.write("MANIFEST-000099\n")
    before = snapshot(root)
    st = cli("status", "--root", root, "--json")
    assert st.returncode == 3
    folders = folders_of(json.loads(st.stdout))
    assert folders[bad]["state"] == "unreadable" and bad in folders[bad]["error"]
    rep = cli("report", "--root", root, "--json")
    assert rep.returncode == 3 and bad in rep.stderr
    assert json.loads(rep.stdout)["total"]["events"] == 1
    assert snapshot(root) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder of mode 000 all the same")
def test_an_unreadable_folder_is_named(cli, root, child):
    c = child(root, "agent-x", [llm()])
    c.kill()
    [name] = os.listdir(root)
    os.chmod(os.path.join(root, name), 0)
    try:
        rep = cli("report", "--root", root)
        assert rep.returncode == 3 and name in rep.stderr
    finally:
        os.chmod(os.path.join(root, name), 0o700)


@pytest.mark.parametrize("args,code,words", [
    (["status", "--bogus"], 2, "--bogus"),
    (["report", "--since", "last tuesday"], 2, "--since"),
    (["report", "--since", "2026-13-40"], 2, "--since"),
    (["report", "--by", "colour"], 2, "colour"),
    (["report", "--format", "xml"], 2, "xml"),
    (["report", "--since", "2026-02-01", "--until", "2026-01-01"], 2, "--until"),
    (["events", "--limit", "many"], 2, "many"),
    (["dead-letters", "frob"], 2, "frob"),
    (["sync"], 2, "--endpoint"),
    ([], 2, "subcommand"),
])
def test_bad_input_is_a_usage_error_naming_what_was_wrong(cli, root, args, code, words):
    before = snapshot(root)
    r = cli(*args, *(["--root", root] if args and args[0] != "dead-letters" else []))
    assert r.returncode == code, (r.stdout, r.stderr)
    assert words in r.stderr
    assert snapshot(root) == before


def test_a_root_that_is_a_file(cli, tmp_path):
    path = tmp_path / "file"
    path.write_text("not a folder")
    for cmd in (["status"], ["report"], ["events"], ["dead-letters", "purge"]):
        r = cli(*cmd, "--root", str(path))
        assert r.returncode == 1 and "is not a folder" in r.stderr and str(path) in r.stderr
    assert path.read_text() == "not a folder"


def test_help_has_examples_and_exit_codes(cli):
    for cmd in ("status", "report", "events", "dead-letters", "sync", "price", "budgets",
                "doctor"):
        r = cli(cmd, "--help")
        assert r.returncode == 0 and "Examples:" in r.stdout and "Exit codes" in r.stdout, cmd


def test_folders_set_aside_as_corrupt_are_listed(cli, root):
    os.mkdir(os.path.join(root, "corrupt-p7-abc-1796601600"), 0o700)
    st = cli("status", "--root", root, "--json")
    assert st.returncode == 0
    assert json.loads(st.stdout)["setAside"] == ["corrupt-p7-abc-1796601600"]
    assert "corrupt-p7-abc-1796601600" in cli("status", "--root", root).stdout
