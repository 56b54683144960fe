"""Flattened keys never collide (dotted module names vs nesting, list items sharing a name), every
document names its schema, and timestamps are written in UTC with their offset."""

from __future__ import annotations

import datetime as dt

from steelyard.reporting.files import to_csv, to_json
from steelyard.serialize import SCHEMA_VERSION, flatten, iso_utc, split_key, versioned


def test_a_dotted_module_name_and_a_nested_key_get_different_columns():
    dotted, nested = flatten({"a.b": 1}), flatten({"a": {"b": 2}})
    assert set(dotted).isdisjoint(nested)
    both = flatten({"breakdown": {"encoder.layer": {"flops": 1}, "encoder": {"layer": {"flops": 2}}}})
    assert len(both) == 2 and sorted(both.values()) == [1, 2]
    assert {tuple(split_key(k)) for k in both} == {("breakdown", "encoder.layer", "flops"),
                                                   ("breakdown", "encoder", "layer", "flops")}


def test_escapes_round_trip_and_plain_keys_stay_readable():
    data = {"compute": {"flops": 3}, "odd\\key.": {"x": 1}, "": {"y": 2}, "y": 4}
    flat = flatten(data)
    assert flat["compute.flops"] == 3  # the common case is unchanged
    assert len(flat) == 4
    assert [split_key(k) for k in flat] == [["compute", "flops"], ["odd\\key.", "x"], ["", "y"], ["y"]]


def test_list_items_keyed_by_name_unless_names_repeat():
    assert set(flatten({"hw": [{"hardware": "t4", "v": 1}, {"hardware": "l4", "v": 2}]})) >= {"hw.t4.v", "hw.l4.v"}
    repeated = flatten({"rows": [{"name": "x", "v": 1}, {"name": "x", "v": 2}]})
    assert repeated["rows.0.v"] == 1 and repeated["rows.1.v"] == 2
    clash = flatten({"rows": [{"name": "1", "v": 1}, {"v": 2}]})  # a name equal to another item's index
    assert clash["rows.0.v"] == 1 and clash["rows.1.v"] == 2


def test_csv_rows_do_not_collide_and_start_with_the_schema():
    text = to_csv({"per_module": {"encoder.layer": 1, "encoder": {"layer": 2}}})
    lines = text.splitlines()
    assert lines[:2] == ["metric,value", f"schema_version,{SCHEMA_VERSION}"]
    assert sorted(lines[2:]) == ["per_module.encoder.layer,2", "per_module.encoder\\.layer,1"]


def test_every_json_document_names_its_schema_first():
    assert list(versioned({"a": 1})) == ["schema_version", "a"]
    assert versioned([1, 2], "runs") == {"schema_version": SCHEMA_VERSION, "runs": [1, 2]}
    assert to_json({"schema_version": "old", "x": 1}).startswith('{\n  "schema_version": "' + SCHEMA_VERSION)


def test_timestamps_are_utc_with_their_offset():
    aware = dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert iso_utc(aware) == "2026-12-01T12:00:00+00:00"
    assert iso_utc(dt.datetime(2026, 12, 1, 12, 0)) == "2026-12-01T12:00:00+00:00"  # what SQLite hands back
    local = dt.datetime(2026, 12, 1, 12, 0)
    assert iso_utc(local, naive="local") == local.astimezone().astimezone(dt.timezone.utc).isoformat()
    assert iso_utc(None) is None
