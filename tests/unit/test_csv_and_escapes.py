"""Text from a device or a roster cannot act on the operator's tools: a CSV cell starting like a
formula (= + - @, tab, CR) is written with a leading ' so a spreadsheet shows it as text, and
control characters (a device's ESC [ 2 J in a Content-Length) are shown escaped in the log and
in `status` and `report` output.
"""

import argparse
import csv
import logging


from jobs import log
from jobs.ops import report, status
from jobs.spool import state
from jobs.units import csv_cell, printable
from tests.builders import EVENT_DAY as DAY, HEADER, event_config

ESC = "\x1b[2J\x1b]0;pwned\x07"


def test_cells_starting_like_a_formula_are_quoted_for_spreadsheets():
    assert [csv_cell(v) for v in ("=HYPERLINK(\"x\")", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx")] == [
        "'=HYPERLINK(\"x\")", "'+SUM(A1)", "'-2+3", "'@cmd", "'\tx", "'\rx"]
    assert [csv_cell(v) for v in ("Ann", "-", "-3.5", "12", None)] == ["Ann", "-", "-3.5", "12", ""]


def test_control_characters_are_shown_escaped_and_newlines_kept():
    assert printable(f"a{ESC}b\x9bc\nd") == "a\\x1b[2J\\x1b]0;pwned\\x07b\\x9bc\nd"


def configured(tmp_path, first_name):
    return event_config(tmp_path, HEADER + f"1101,1,470,2026-07-15,2026-07-17,ALD470ANN,{first_name},Alder,Windsurf,OK\n",
                        event={"name": "Report week"})


def test_report_csv_quotes_a_roster_formula_and_every_board_too(tmp_path, capsys):
    cfg = configured(tmp_path, "=cmd|' /C calc'!A0")
    for board in ({}, {"accounted": True}):
        out = tmp_path / f"day{len(board)}.csv"
        args = argparse.Namespace(**{"date": DAY, "csv": str(out), "accounted": False, "fastest": False, **board})
        report.main(cfg, args)
        with open(out, encoding="utf-8-sig", newline="") as f:
            cells = [cell for row in csv.reader(f) for cell in row]
        assert "'=cmd|' /C calc'!A0" in cells or "'=cmd|' /C calc'!A0 Alder" in cells, cells
        assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
    capsys.readouterr()


def test_a_devices_escape_sequence_reaches_the_log_and_status_escaped(tmp_path, capsys):
    cfg = configured(tmp_path, "Ann")
    log.setup(cfg, console=False, errors_to_stderr=False)
    try:
        with state.update(cfg.paths.spool, 470) as doc:
            state.mark_failed(doc, f"the device announces {ESC} bytes", 2.0)
        log.for_device("download", 470).error("not downloaded: the device announces %s bytes", ESC)
    finally:
        for handler in list(logging.getLogger("motion").handlers):
            handler.close()
            logging.getLogger("motion").removeHandler(handler)
    text = open(cfg.paths.log, encoding="utf-8").read()
    assert "\x1b" not in text and "\x07" not in text and "announces \\x1b[2J\\x1b]0;pwned\\x07 bytes" in text
    status.main(cfg, argparse.Namespace(json=False))
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "announces \\x1b[2J" in shown
