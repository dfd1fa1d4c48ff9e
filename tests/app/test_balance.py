"""Connection balancing among server processes (app/balance.py): the shared table's arithmetic here, the whole
service with two workers in tests/app/test_workers.py."""

import subprocess
import sys
from pathlib import Path

from app.balance import SLACK, ConnectionTable, fair_share


def test_a_fair_share_spreads_connections_as_evenly_as_they_can_be():
    assert [fair_share(n, 2) for n in (0, 1, 2, 31, 32, 33)] == [0, 1, 1, 16, 16, 17]
    assert fair_share(10, 4) == 3 and fair_share(5, 0) == 5


def test_a_process_past_its_share_and_the_slack_is_over_and_leaving_connections_count_as_gone(tmp_path: Path):
    path = ConnectionTable.create(tmp_path / "connections")
    crowded, quiet = ConnectionTable(path), ConnectionTable(path)  # two processes' handles (one pid here)
    assert crowded.mine != quiet.mine
    crowded.add(8)
    quiet.add(4)
    assert crowded.over_share() and not quiet.over_share()  # share 6 + slack 1 < 8
    crowded.leaving = 1  # 7 of 11: share 6 + 1
    assert not crowded.over_share()
    crowded.leaving = 0
    crowded.add(-1)
    quiet.add(1)
    assert not crowded.over_share() and crowded.own - quiet.own == 2 * SLACK
    crowded.close()
    assert quiet.slots[crowded.mine].tolist() == [0, 0]  # a process that stops gives its slot back


def test_the_slot_of_a_process_that_died_is_taken_over_with_a_zero_count(tmp_path: Path):
    path = ConnectionTable.create(tmp_path / "connections")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    first = ConnectionTable(path)
    first.slots[first.mine + 1] = [int(dead.stdout), 9]  # a process that died holding 9 connections
    second = ConnectionTable(path)
    assert second.mine == first.mine + 1 and second.own == 0
