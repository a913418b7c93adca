"""The workshop's engine pool: parsing --engine, placing labs by free seats, skipping engines that do not answer."""

import subprocess

import pytest

from opslabs.errors import UserError
from opslabs.web import engines
from opslabs.web.engines import Engine, EnginePool, NoSeat, parse_engine, parse_engines


@pytest.mark.parametrize("spec, url, seats", [
    ("unix:///run/docker.sock", "unix:///run/docker.sock", 8),
    ("ssh://ops@lab-host-2", "ssh://ops@lab-host-2", 8),
    ("ssh://ops@10.0.0.7:2222,seats=30", "ssh://ops@10.0.0.7:2222", 30),
    ("tcp://10.0.0.5:2376,seats=3", "tcp://10.0.0.5:2376", 3),
])
def test_engine_urls_and_seats_are_parsed(spec, url, seats):
    one = parse_engine(spec, default_seats=8)
    assert (one.url, one.seats, one.used) == (url, seats, 0)


@pytest.mark.parametrize("spec, words", [
    ("http://host:2375", "expected unix:///PATH, ssh://[USER@]HOST[:PORT] or tcp://HOST:PORT"),
    ("unix://run/docker.sock", "absolute path"),
    ("ssh://", "needs a host"),
    ("ssh://ops@host/var/run", "without a path"),
    ("tcp://10.0.0.5", "a host and a port"),
    ("unix:///run/docker.sock,seats=0", "above 0"),
    ("unix:///run/docker.sock,seat=3", "URL,seats=N"),
    ("unix:///run/docker.sock,seats=many", "URL,seats=N"),
])
def test_bad_engine_specs_say_what_was_expected(spec, words):
    with pytest.raises(UserError) as err:
        parse_engine(spec, default_seats=4)
    assert words in str(err.value) and "--engine" in str(err.value)


def test_no_engine_given_means_the_environments_engine_with_the_servers_seats():
    assert parse_engines([], 12) == [Engine(url=None, seats=12)]
    with pytest.raises(UserError, match="--seats 0"):
        parse_engines([], 0)


def test_an_engine_given_twice_is_refused():
    with pytest.raises(UserError, match="given twice"):
        parse_engines(["unix:///a.sock", "unix:///a.sock,seats=2"], 4)


def pool_of(*seats: int, down: dict[str, str] | None = None, reports: list | None = None):
    down = down if down is not None else {}
    asked: list[str] = []

    def probe(url):
        asked.append(url)
        return down.get(url, "")

    pool = EnginePool([Engine(f"unix:///e{i}.sock", n) for i, n in enumerate(seats)], probe=probe,
                      report=(reports.append if reports is not None else lambda m: None))
    return pool, asked


def test_labs_go_to_the_engine_with_most_free_seats_ties_to_the_first_given():
    pool, _ = pool_of(2, 3)
    placed = [pool.acquire().url for _ in range(5)]
    # free (2,3) -> e1; (2,2) tie -> e0; (1,2) -> e1; (1,1) tie -> e0; (0,1) -> e1
    assert placed == ["unix:///e1.sock", "unix:///e0.sock", "unix:///e1.sock", "unix:///e0.sock", "unix:///e1.sock"]
    with pytest.raises(NoSeat, match="5 seats taken on unix:///e0.sock, unix:///e1.sock"):
        pool.acquire()
    pool.release("unix:///e0.sock")
    assert pool.acquire().url == "unix:///e0.sock"


def test_four_learners_on_two_equal_engines_are_spread_two_and_two():
    pool, _ = pool_of(4, 4)
    placed = [pool.acquire().url for _ in range(4)]
    assert placed.count("unix:///e0.sock") == 2 and placed.count("unix:///e1.sock") == 2


def test_an_engine_that_does_not_answer_is_reported_once_and_skipped():
    reports: list[str] = []
    down = {"unix:///e0.sock": "Cannot connect to the Docker daemon at unix:///e0.sock"}
    pool, _ = pool_of(5, 1, down=down, reports=reports)
    assert pool.acquire().url == "unix:///e1.sock"  # e0 has more free seats but does not answer
    with pytest.raises(NoSeat) as err:
        pool.acquire()
    assert "not answering: unix:///e0.sock (Cannot connect to the Docker daemon at unix:///e0.sock)" in str(err.value)
    assert "1 seats taken on unix:///e1.sock" in str(err.value)
    assert reports == ["engine unix:///e0.sock does not answer (Cannot connect to the Docker daemon at unix:///e0.sock); "
                       "new labs go to the other engines until it does"]
    assert pool.status()[0]["problem"].startswith("Cannot connect")
    down.clear()  # it comes back
    assert pool.acquire().url == "unix:///e0.sock"
    assert reports[-1] == "engine unix:///e0.sock answers again; it takes new labs"
    assert pool.status()[0]["problem"] == ""


def test_an_engine_that_answered_recently_is_not_asked_again():
    pool, asked = pool_of(3)
    pool.acquire()
    pool.acquire()
    assert asked == ["unix:///e0.sock"]


def test_occupy_counts_labs_found_running_and_release_never_goes_below_zero():
    pool, _ = pool_of(1, 1)
    pool.occupy("unix:///e0.sock")
    assert pool.acquire().url == "unix:///e1.sock"
    pool.release("unix:///e0.sock")
    pool.release("unix:///e0.sock")
    assert pool.get("unix:///e0.sock").used == 0
    with pytest.raises(KeyError):
        pool.release("unix:///nope.sock")


def test_ask_reports_the_docker_clis_words(monkeypatch):
    def fake_run(args, **kwargs):
        assert args[:3] == ["docker", "--host", "ssh://ops@b2"]
        return subprocess.CompletedProcess(args, 1, b"", b"warning\nerror during connect: ssh: connect to host b2 port 22: Connection refused\n")

    monkeypatch.setattr(engines.subprocess, "run", fake_run)
    assert engines.ask("ssh://ops@b2") == "error during connect: ssh: connect to host b2 port 22: Connection refused"

    def slow(args, **kwargs):
        raise subprocess.TimeoutExpired(args, 20)

    monkeypatch.setattr(engines.subprocess, "run", slow)
    assert engines.ask("ssh://ops@b2", timeout=20) == "no answer within 20 s"


def test_an_engine_out_of_room_is_skipped_for_a_while_and_said_so():
    clock = [100.0]
    reports: list[str] = []
    pool = EnginePool([Engine("unix:///e0.sock", 5), Engine("unix:///e1.sock", 1)], probe=lambda url: "",
                      report=reports.append, clock=lambda: clock[0])
    pool.mark_full("unix:///e0.sock", "no address range left for another lab network")
    assert reports == ["engine unix:///e0.sock has no room for another lab (no address range left for another lab network); "
                       "new labs go to the other engines"]
    assert pool.acquire().url == "unix:///e1.sock"  # e0 has more free seats, but no room
    with pytest.raises(NoSeat, match=r"out of room: unix:///e0.sock \(no address range left"):
        pool.acquire()
    assert pool.status()[0]["problem"] == "no address range left for another lab network"
    clock[0] += engines.FULL_FOR
    assert pool.acquire().url == "unix:///e0.sock"  # tried again later: labs may have ended there
