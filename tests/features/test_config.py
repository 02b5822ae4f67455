from __future__ import annotations

import pytest

from leadscore.crm.errors import ConfigError
from leadscore.features.config import DEFAULT_SNAPSHOT_AGES, FeatureConfig, load_feature_config


def test_defaults_and_shipped_config_agree():
    assert load_feature_config("conf/features.yaml") == FeatureConfig()
    assert load_feature_config(None).horizon_days == 90


def test_ages_and_windows_are_sorted():
    config = FeatureConfig(snapshot_ages_days=[30, 0, 7], windows_days=[90, 7, 30])
    assert config.snapshot_ages_days == [0, 7, 30] and config.windows_days == [7, 30, 90]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("snapshot_ages_days: [-1, 3]\n", "snapshot ages must be >= 0"),
        ("snapshot_ages_days: []\n", "at least one snapshot age"),
        ("horizon_days: 0\n", "horizon_days"),
        ("windows_days: [7, 7]\n", "windows must be distinct"),
        ("trend_recent_days: 30\ntrend_older_days: 7\n", "must be shorter"),
        ("trend_older_days: 60\n", "must be one of windows_days"),
        ("horizon: 90\n", "horizon: Extra inputs are not permitted"),
        ("activity_types: [call, call]\n", "distinct"),
        ("horizon_days: soon\n", "horizon_days"),
        ("[1, 2]\n", "mapping"),
        ("a: [b\n", "not valid YAML"),
    ],
)
def test_bad_config_gets_a_clear_error(tmp_path, text, fragment):
    path = tmp_path / "features.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="features.yaml") as info:
        load_feature_config(path)
    assert fragment in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_feature_config(tmp_path / "nope.yaml")


def test_the_feature_set_version_does_not_depend_on_how_numbers_are_written(tmp_path):
    from leadscore.features.definitions import resolve_spec

    def version(config):
        return resolve_spec(
            config,
            profile_dtypes={"industry": "categorical"},
            observed_types=["page_view"],
            sales_touch_types=["call"],
        ).version

    path = tmp_path / "features.yaml"
    ages = ", ".join(f"{float(a)}" for a in DEFAULT_SNAPSHOT_AGES)
    path.write_text(f"snapshot_ages_days: [{ages}]\nhorizon_days: 90.0\n")
    assert version(load_feature_config(path)) == version(FeatureConfig())
    assert version(load_feature_config("conf/features.yaml")) == version(FeatureConfig())
    path.write_text("snapshot_ages_days: [0, 3.5]\n")
    assert version(load_feature_config(path)) != version(FeatureConfig())


def test_snapshot_ages_follow_the_data_as_far_as_the_open_pipeline_and_matured_history():
    from leadscore.features.config import data_ages

    grid = [0.0, 30.0, 365.0, 730.0]
    # a long history with leads open for years: ages half again the last, while matured
    assert data_ages(grid, oldest_open_days=4_000, oldest_matured_days=3_000) == [
        0.0, 30.0, 365.0, 730.0, 1095.0, 1642.0, 2463.0,
    ]  # fmt: skip
    # the open pipeline is younger than the grid: nothing added
    assert data_ages(grid, oldest_open_days=500, oldest_matured_days=3_000) == grid
    # no open lead, or a history too short for any added age: nothing added
    assert data_ages(grid, oldest_open_days=None, oldest_matured_days=3_000) == grid
    assert data_ages(grid, oldest_open_days=4_000, oldest_matured_days=1_000) == grid
    # the grid's oldest ages not matured yet: stepping starts from the oldest matured one
    assert data_ages(grid, oldest_open_days=600, oldest_matured_days=560) == [
        0.0, 30.0, 365.0, 548.0, 730.0,
    ]  # fmt: skip
