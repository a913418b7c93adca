"""Issue 10, load time: a lab file cannot ask for the machine, YAML cannot cost more than it
weighs, NUL bytes are refused, check output need not be text, and checks declare timeouts.

The hostile files live in fixtures/hostile/; each is loaded on its own, beside a valid area.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opslabs.errors import UserError, ValidationFailed
from opslabs.load import load_catalog
from opslabs.model import Step
from opslabs.policy import DEFAULT_POLICY, Policy
from opslabs.session import CommandResult
from opslabs.testinfra_backend import SessionBackend

HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
AREA = "id: web\ntitle: Web\norder: 1\nsummary: s\noverview: o\n"


def kb_with(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A knowledge base holding only the hostile file `name`; returns (root, file)."""
    area = tmp_path / "labs" / "web"
    area.mkdir(parents=True)
    (area / "area.yaml").write_text(AREA)
    target = area / f"{name}.yaml"
    shutil.copy(HOSTILE / f"{name}.yaml", target)
    return tmp_path / "labs", target


def validate(root: Path, *flags: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "opslabs", "--labs", str(root), "validate", *flags],
                          capture_output=True, text=True, timeout=60, env=env)
    return proc, time.monotonic() - started


# --- item 0: privileges only by the operator's flag -------------------------

REFUSED = {
    # name: (line:col of the refused value, what the message says, the flag that allows it)
    "privileged": ("10:11", "a privileged host is root on the machine", ["--allow-privileged"]),
    "cap-all": ("10:21", "every capability is refused unless the operator passes --allow-cap ALL", ["--allow-cap", "ALL"]),
    "cap-sys-admin": ("10:21", "capability SYS_ADMIN is refused unless the operator passes --allow-cap SYS_ADMIN", ["--allow-cap", "SYS_ADMIN"]),
    "memory-64g": ("10:11", "64g is above the operator's maximum of 2g; refused unless the operator passes --max-memory 64g", ["--max-memory", "64g"]),
    "pids-65536": ("10:11", "65536 is above the operator's maximum of 4096; refused unless the operator passes --max-pids 65536", ["--max-pids", "65536"]),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_lab_asking_for_the_machine_is_refused_with_file_line_and_the_flag_that_allows_it(tmp_path, name):
    root, path = kb_with(tmp_path, name)
    where, message, flags = REFUSED[name]
    proc, _ = validate(root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{path}:{where}: lab.hosts.box." in proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    allowed, _ = validate(root, *flags)
    assert allowed.returncode == 0, allowed.stderr
    assert "1 labs: valid" in allowed.stdout


def test_the_operator_flag_is_also_the_pytest_plugin_s_option(tmp_path):
    root, _ = kb_with(tmp_path, "cap-sys-admin")
    refused = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                              "--opslabs-labs", str(root), str(root)], capture_output=True, text=True, timeout=60)
    assert "capability SYS_ADMIN is refused unless the operator passes --allow-cap SYS_ADMIN" in refused.stdout
    assert refused.returncode != 0
    allowed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                              "--opslabs-labs", str(root), "--opslabs-allow-cap", "SYS_ADMIN", str(root)],
                             capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0, allowed.stdout
    assert "1 test collected" in allowed.stdout


@pytest.mark.parametrize("cap", ["SYS_ADMIN", "CAP_SYS_ADMIN", "sys_admin", "ALL", "CAP_ALL", "SYS_PTRACE", "SYS_MODULE"])
def test_every_spelling_docker_accepts_is_held_to_the_allowlist(cap):
    assert not DEFAULT_POLICY.cap_allowed(cap)
    assert Policy(allow_caps=frozenset({cap})).cap_allowed(cap)


def test_the_allowlist_covers_what_the_labs_use_and_all_allows_any():
    for cap in ("NET_ADMIN", "AUDIT_WRITE", "NET_RAW", "CAP_NET_ADMIN"):
        assert DEFAULT_POLICY.cap_allowed(cap)
    assert Policy(allow_caps=frozenset({"ALL"})).cap_allowed("SYS_ADMIN")
    assert not Policy(allow_caps=frozenset({"SYS_PTRACE"})).cap_allowed("ALL")


def test_memory_zero_would_mean_no_limit_and_is_refused_whatever_the_flags():
    generous = Policy(allow_privileged=True, allow_caps=frozenset({"ALL"}), max_memory="999g", max_pids=10**6)
    assert [field for field, _ in generous.check_host(False, [], "0m", 64)] == ["memory"]
    assert generous.check_host(True, ["ALL"], "64g", 65536) == []


def test_the_existing_labs_keep_within_the_default_policy(repo):
    assert len(load_catalog(repo / "labs", DEFAULT_POLICY).labs()) >= 15


# --- item 1: YAML that costs more than it weighs ----------------------------


@pytest.mark.parametrize("name, where, limit", [
    ("billion-laughs", ":10:22: the alias *a3 makes the file expand to more than 50000 values", "OPSLABS_YAML_MAX_NODES"),
    ("deep-nesting", ":6:258: this value nests 65 levels deep, more than the limit of 64", "OPSLABS_YAML_MAX_DEPTH"),
])
def test_hostile_yaml_fails_validate_in_under_two_seconds_located_and_without_a_traceback(tmp_path, name, where, limit):
    root, path = kb_with(tmp_path, name)
    proc, seconds = validate(root)
    assert proc.returncode == 1
    assert f"{path}{where}" in proc.stderr
    assert f"(set {limit} to raise it)" in proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert seconds < 2.0, f"{name} took {seconds:.1f} s"


def test_a_file_above_the_size_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    root, path = kb_with(tmp_path, "deep-nesting")  # 25 KB
    monkeypatch.setenv("OPSLABS_YAML_MAX_BYTES", "10000")
    with pytest.raises(ValidationFailed) as caught:
        load_catalog(root)
    [problem] = caught.value.problems
    assert str(problem) == (f"{path}:1:1: file larger than 10000 bytes, the limit for one YAML file "
                            "(set OPSLABS_YAML_MAX_BYTES to raise it)")


def test_limits_can_be_raised_by_the_operator_but_never_into_a_recursion_error(tmp_path, monkeypatch):
    root, path = kb_with(tmp_path, "billion-laughs")
    monkeypatch.setenv("OPSLABS_YAML_MAX_NODES", "2000000000")
    monkeypatch.setenv("OPSLABS_YAML_MAX_DEPTH", "5000")
    with pytest.raises(UserError, match="OPSLABS_YAML_MAX_DEPTH=5000: at most 200 levels can be read safely"):
        load_catalog(root)


def test_aliases_are_fine_within_the_limits_and_deep_aliases_count_their_depth(tmp_path, monkeypatch):
    area = tmp_path / "labs" / "web"
    area.mkdir(parents=True)
    (area / "area.yaml").write_text(AREA)
    # Each alias nests the one before one level deeper: few values, ever deeper once expanded.
    chain = "".join(f"x{i}: &x{i} [*x{i - 1}]\n" for i in range(1, 80))
    (area / "chain.yaml").write_text("id: chain\nx0: &x0 [1]\n" + chain)
    with pytest.raises(ValidationFailed) as caught:
        load_catalog(tmp_path / "labs")
    assert any("the alias *x62 nests 65 levels deep" in str(p) for p in caught.value.problems)


# --- item 4: NUL bytes ------------------------------------------------------


@pytest.mark.parametrize("name, where, field", [
    ("nul-in-solution", "13:35", "lab.steps.0.solution.0.run"),
    ("nul-in-check", "14:37", "lab.steps.0.checks.0.command"),
    ("nul-in-setup", "10:19", "lab.hosts.box.setup.0"),
])
def test_a_nul_in_a_command_is_refused_at_load_with_file_and_line(tmp_path, name, where, field):
    root, path = kb_with(tmp_path, name)
    with pytest.raises(ValidationFailed) as caught:
        load_catalog(root)
    [problem] = caught.value.problems
    assert str(problem).startswith(f"{path}:{where}: {field}: contains a NUL character")


# --- item 3: output that is not text ----------------------------------------


class _RecordedSession:
    """Gives back fixed bytes, as a session does after running a command in a host."""

    def __init__(self, stdout: bytes):
        self.stdout = stdout

    def run(self, command: str, timeout: float, subshell: bool) -> CommandResult:
        return CommandResult(command, 0, self.stdout, b"\xff\xfe", 0.0)


def test_check_output_that_is_not_utf8_is_decoded_with_replacement():
    noise = bytes(range(256)) * 8  # every byte value, not valid UTF-8
    backend = SessionBackend(_RecordedSession(noise + b"\nmarker\n"), "box")
    result = backend.run("anything")
    assert result.rc == 0
    assert "marker" in result.stdout and "\ufffd" in result.stdout
    assert result.stderr == "\ufffd\ufffd"
    assert result.stdout_bytes.startswith(noise)


# --- item 6: declarable check timeouts --------------------------------------


def test_a_check_s_timeout_comes_from_the_check_else_its_step_else_sixty_seconds():
    base = {"title": "t", "solution": [{"host": "box", "run": "true"}]}
    plain = Step.model_validate({**base, "checks": [{"host": "box", "file": "/x"}]})
    assert plain.timeout_of(plain.checks[0]) == 60
    step = Step.model_validate({**base, "check_timeout": 5,
                                "checks": [{"host": "box", "file": "/x"}, {"host": "box", "file": "/y", "timeout": 1.5}]})
    assert [step.timeout_of(c) for c in step.checks] == [5, 1.5]


def test_a_time_budget_is_shared_by_the_commands_of_one_attempt():
    from opslabs.session import CommandTimeout

    class Slow(_RecordedSession):
        def run(self, command, timeout, subshell):
            self.timeouts.append(timeout)
            time.sleep(0.3)
            return super().run(command, timeout, subshell)

    session = Slow(b"")
    session.timeouts = []
    backend = SessionBackend(session, "box")
    with backend.time_limit(0.5):
        backend.run("first")
        backend.run("second")
        with pytest.raises(CommandTimeout):
            backend.run("third")
    assert session.timeouts[0] <= 0.5 and session.timeouts[1] <= 0.2
    backend.run("outside")  # no budget outside the attempt
    assert session.timeouts[-1] == 60


# --- the site ---------------------------------------------------------------


def test_no_hand_written_page_shares_its_address_with_an_area(repo):
    """docs/security.md would be hidden by the `security` area's index page (both /security/)."""
    areas = {area.id for area in load_catalog(repo / "labs", None).areas}
    pages = {page.stem for page in (repo / "docs").glob("*.md")}
    assert pages & areas == set()
    assert (repo / "docs" / "security-and-limits.md").exists()


def test_a_cpu_quota_is_optional_and_at_most_one_core():
    from pydantic import ValidationError

    from opslabs.model import Host

    assert Host().cpus is None and Host(cpus=0.5).cpus == 0.5
    for refused in (0, 0.01, 1.5, 4):  # 0 would be no quota; above one core is not valid on every machine
        with pytest.raises(ValidationError):
            Host(cpus=refused)
