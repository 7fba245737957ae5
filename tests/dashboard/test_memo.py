"""The in-process memo under the server's many callback threads."""

import threading
import time

import pytest

from dashboard.memo import LastUsed


def test_a_value_asked_for_by_many_threads_at_once_is_made_once():
    memo: LastUsed[int] = LastUsed(4)
    made, start = [], threading.Barrier(8)

    def make():
        made.append(1)
        time.sleep(0.2)  # long enough for every thread to ask meanwhile
        return 42

    def ask():
        start.wait()
        got.append(memo.get("model", make))

    got: list[int] = []
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == [42] * 8 and len(made) == 1


def test_different_keys_are_made_in_parallel():
    memo: LastUsed[str] = LastUsed(4)
    inside = threading.Barrier(2, timeout=5)  # both makes must run at the same time

    def make(key):
        inside.wait()
        return key

    threads = [threading.Thread(target=memo.get, args=(k, lambda k=k: make(k))) for k in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not inside.broken
    assert memo.get("a", lambda: "again") == "a" and memo.get("b", lambda: "again") == "b"


def test_a_failed_make_keeps_nothing():
    memo: LastUsed[int] = LastUsed(2)
    with pytest.raises(ValueError, match="unreadable"):
        memo.get("x", lambda: (_ for _ in ()).throw(ValueError("unreadable")))
    assert memo.get("x", lambda: 7) == 7
    memo.get("y", lambda: 8)
    memo.get("z", lambda: 9)  # the oldest, "x", goes
    assert memo.get("x", lambda: 10) == 10
