"""A track's ledger entry (jobs.ledger): its words, its groups, and the transitions that move it."""

from jobs import ledger


def test_the_words_on_disk_are_the_ones_running_events_wrote():
    # State files of a running event hold these words: a renamed status would strand its tracks.
    assert ledger.STATUSES == ("verified", "damaged", "wanted", "skipped", "bad", "recording", "partial")


def test_each_group_is_made_of_statuses_and_says_what_it_holds():
    groups = (ledger.ON_DISK, ledger.WITH_FILE, ledger.SETTLED, ledger.GROWING, ledger.TO_COME, ledger.LOGGED)
    assert all(set(group) <= set(ledger.STATUSES) for group in groups)
    assert ledger.ON_DISK == ("verified", "damaged")
    assert set(ledger.WITH_FILE) == {*ledger.ON_DISK, "partial"}           # a file under its final name
    assert set(ledger.SETTLED) == {*ledger.ON_DISK, "bad"}                 # planning leaves them be
    assert set(ledger.LOGGED) == set(ledger.STATUSES) - {"skipped"}        # logged that day: all but skipped
    assert not set(ledger.TO_COME) & set(ledger.SETTLED)
