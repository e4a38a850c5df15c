"""Parsing and cleaning of the challenge record format, checked against hand-worked values."""
import pytest

from training.physionet import bin_observations, parse_record
from training.spec import base_manifest


@pytest.fixture(scope="module")
def manifest():
    return base_manifest("icu-mortality", "t", "", hidden=8, bootstrap=True, description="")


def record(*lines, descriptors=("RecordID,1", "Age,54", "Gender,0", "Height,-1", "ICUType,4", "Weight,-1")):
    return "\n".join(["Time,Parameter,Value"] + [f"00:00,{d}" for d in descriptors] + list(lines)) + "\n"


def values(rec, name):
    return [(m, v) for m, n, v in rec.observations if n == name]


def test_descriptors_become_statics_with_minus_one_as_unknown(manifest):
    rec = parse_record(record(), manifest)
    assert rec.record_id == "1"
    assert rec.statics == {"Age": 54.0, "Height": None, "Gender": 0.0, "ICUType": 4.0}
    assert rec.observations == []  # Weight -1 is dropped


def test_out_of_range_and_unknown_category_descriptors_are_unknown(manifest):
    rec = parse_record(record(descriptors=("RecordID,2", "Age,130", "Gender,2", "Height,400", "ICUType,7")), manifest)
    assert rec.statics == {"Age": None, "Height": None, "Gender": None, "ICUType": None}


def test_missing_descriptor_lines_are_unknown_and_the_first_occurrence_wins(manifest):
    rec = parse_record(record("05:00,Age,30", descriptors=("RecordID,3", "Age,70")), manifest)
    assert rec.statics == {"Age": 70.0, "Height": None, "Gender": None, "ICUType": None}


def test_weight_descriptor_is_the_hour_zero_weight_observation(manifest):
    rec = parse_record(record("12:00,Weight,79.5", descriptors=("RecordID,4", "Weight,81")), manifest)
    assert values(rec, "Weight") == [(0, 81.0), (720, 79.5)]


def test_temperature_in_fahrenheit_is_converted(manifest):
    rec = parse_record(record("01:00,Temp,98.6", "02:00,Temp,37.2", "03:00,Temp,212"), manifest)
    got = values(rec, "Temp")
    assert [m for m, _ in got] == [60, 120]  # 212 degF = 100 degC is impossible: dropped
    assert got[0][1] == pytest.approx(37.0, abs=1e-12)
    assert got[1][1] == 37.2


def test_fio2_in_percent_becomes_a_fraction(manifest):
    rec = parse_record(record("01:00,FiO2,40", "02:00,FiO2,0.5", "03:00,FiO2,1", "04:00,FiO2,0.1"), manifest)
    assert values(rec, "FiO2") == [(60, 0.4), (120, 0.5), (180, 1.0)]


def test_ph_without_decimal_point_is_repaired_and_other_ph_slips_dropped(manifest):
    rec = parse_record(record("01:00,pH,735", "02:00,pH,97", "03:00,pH,7.21"), manifest)
    got = values(rec, "pH")
    assert [m for m, _ in got] == [60, 180]
    assert got[0][1] == pytest.approx(7.35)


def test_impossible_values_and_minus_one_are_dropped(manifest):
    rec = parse_record(record("00:10,HR,-1", "00:11,HR,400", "00:12,HR,0", "00:13,MAP,0", "00:14,SaO2,0",
                              "00:15,GCS,2", "00:16,Urine,0"), manifest)
    assert [(n, v) for _, n, v in rec.observations] == [("HR", 0.0), ("Urine", 0.0)]


def test_observations_after_48_hours_are_dropped_but_48_00_is_kept(manifest):
    rec = parse_record(record("47:59,HR,80", "48:00,HR,81", "48:01,HR,82", "60:00,HR,83"), manifest)
    assert values(rec, "HR") == [(2879, 80.0), (2880, 81.0)]


def test_malformed_lines_and_unknown_parameters_are_ignored(manifest):
    rec = parse_record(record("06:15,,1.9", "06:20,HR,", "06:25,HR,abc", "6:5,HR,70", "06:75,HR,70",
                              "06:30,Foo,12", "06:40,HR,0x10", "06:41,HR,NaN", "06:42,HR,inf", "06:43,HR,1,2",
                              "07:00, HR , 71 ", "07:01,HR,1e2", "7:02,HR,.5e2"), manifest)
    assert values(rec, "HR") == [(420, 71.0), (421, 100.0), (422, 50.0)]


def test_windows_line_endings_parse(manifest):
    rec = parse_record("Time,Parameter,Value\r\n00:00,Age,40\r\n01:00,HR,90\r\n", manifest)
    assert rec.statics["Age"] == 40.0
    assert values(rec, "HR") == [(60, 90.0)]


def test_binning_keeps_the_last_value_sums_urine_and_puts_48_00_in_the_last_hour(manifest):
    rec = parse_record(record("00:20,MAP,71", "00:20,MAP,83", "00:20,Urine,400", "00:20,Urine,0", "00:50,Urine,60",
                              "02:10,HR,90", "47:30,HR,110", "48:00,HR,115", "47:59,Urine,20", "48:00,Urine,50"),
                       manifest)
    rows = bin_observations(rec.observations, manifest)
    assert len(rows) == 48
    assert rows[0] == {"MAP": 83.0, "Urine": 460.0}
    assert rows[1] == {}
    assert rows[2] == {"HR": 90.0}
    assert rows[47] == {"HR": 115.0, "Urine": 70.0}


def test_rows_run_to_the_last_observed_hour_and_an_empty_record_is_one_row(manifest):
    rec = parse_record(record("00:05,HR,80", "02:45,HR,85"), manifest)
    assert bin_observations(rec.observations, manifest) == [{"HR": 80.0}, {}, {"HR": 85.0}]
    assert bin_observations(parse_record(record(), manifest).observations, manifest) == [{}]


def test_hours_before_the_first_observation_are_empty_rows(manifest):
    rec = parse_record(record("05:10,HR,66"), manifest)
    rows = bin_observations(rec.observations, manifest)
    assert rows == [{}, {}, {}, {}, {}, {"HR": 66.0}]
