"""Bad channel CSVs and channel parameters, table-driven (issue #15).

Each case asserts the error type and a message fragment naming the file (and line) or the
parameter; tests/system/test_channel.py holds the older malformed-row cases.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gelato_env.env import GelatoEnv
from gelato_env.system import RadioParams
from gelato_env.system.channel import TraceRate, load_rate_trace, make_channel

RADIO = RadioParams()
HEADER = b"timestamp_s,rate_bps\n"

CSV_CASES = [
    # (id, file bytes, error, fragment after "<file>")
    ("binary", b"\xff\xfe\x00t\x00i", ValueError, ": not a UTF-8 text CSV"),
    ("semicolons", b"timestamp_s;rate_bps\n0;1e6\n", ValueError,
     ", line 1: expected the header 'timestamp_s,rate_bps'"),
    ("extra_header_column", b"timestamp_s,rate_bps,snr_db\n0,1e6,3\n", ValueError,
     ", line 1: expected the header"),
    ("one_column_row", HEADER + b"0,1e6\n0.5\n", ValueError,
     ", line 3: expected 2 columns, got 1"),
    ("trailing_comma", HEADER + b"0,1e6,\n", ValueError, ", line 2: expected 2 columns, got 3"),
    ("thousands_separators", HEADER + b"0,1,000,000\n", ValueError,
     ", line 2: expected 2 columns, got 4"),
    ("infinite_rate", HEADER + b"0,inf\n", ValueError, ", line 2: values must be finite"),
    ("overflowing_timestamp", HEADER + b"1e400,1e6\n", ValueError,
     ", line 2: values must be finite"),
    ("units_in_cell", HEADER + b"0,1 Mbps\n", ValueError, ", line 2: non-numeric value"),
    ("comments_only", b"# a bandwidth log\n# no data\n", ValueError,
     ": empty file, expected the header"),
    ("negative_rate_after_comment", HEADER + b"0,1e6\n# dip\n1,-1\n", ValueError,
     ", line 4: rate_bps must be > 0, got -1.0"),
    ("repeated_timestamp", HEADER + b"0,1e6\n0,2e6\n", ValueError,
     ", line 3: timestamps must strictly increase, got 0.0 after 0.0"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "error", "fragment"),
    [case[1:] for case in CSV_CASES],
    ids=[case[0] for case in CSV_CASES],
)
def test_bad_csv_names_the_file(tmp_path: Path, content: bytes, error: type, fragment: str) -> None:
    path = tmp_path / "bw.csv"
    path.write_bytes(content)
    with pytest.raises(error, match=re.escape(f"{path}{fragment}")):
        load_rate_trace(path)
    with pytest.raises(error, match=re.escape(f"{path}{fragment}")):  # the same through the env
        GelatoEnv(trace_path="/nonexistent", channel="trace", channel_params={"path": str(path)})


def _directory(tmp_path: Path) -> Path:
    (tmp_path / "bw.csv").mkdir()
    return tmp_path / "bw.csv"


PARAM_CASES = [
    # (id, make_channel kwargs (path: a callable of tmp_path), error, fragment)
    ("no_path", {}, ValueError, "channel 'trace' needs the parameter 'path' in channel_params"),
    ("path_none", {"path": None}, TypeError,
     "path must be a CSV file path (str or os.PathLike), got None"),
    ("path_list", {"path": ["bw.csv"]}, TypeError, "got ['bw.csv']"),
    ("absent_file", {"path": lambda tmp: tmp / "absent.csv"}, FileNotFoundError, "absent.csv"),
    ("directory", {"path": _directory}, IsADirectoryError, "bw.csv"),
    ("step_s_zero", {"path": "VALID", "advance": "time", "step_s": 0.0}, ValueError,
     "step_s must be > 0, got 0.0"),
    ("advance_typo", {"path": "VALID", "advance": "rows"}, ValueError,
     "advance must be one of ['row', 'time'], got 'rows'"),
    ("unknown_param", {"path": "VALID", "speed": 2}, ValueError,
     "channel 'trace' takes ['path', 'advance', 'step_s', 'random_start'], got unknown ['speed']"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [case[1:] for case in PARAM_CASES],
    ids=[case[0] for case in PARAM_CASES],
)
def test_bad_trace_channel_parameters(
    tmp_path: Path, kwargs: dict[str, Any], error: type, fragment: str
) -> None:
    valid = tmp_path / "valid.csv"
    valid.write_bytes(HEADER + b"0,1e6\n")
    path = kwargs.get("path")
    if path == "VALID":
        kwargs = {**kwargs, "path": valid}
    elif callable(path):
        kwargs = {**kwargs, "path": path(tmp_path)}
    with pytest.raises(error, match=re.escape(fragment)):
        make_channel("trace", RADIO, **kwargs)


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER + b"0,1e6\n1,2e6\n")
    assert TraceRate(RADIO, path).trace_rate_bps.tolist() == [1e6, 2e6]
