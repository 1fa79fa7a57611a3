import pytest

from boom_tasks.errors import ConfigError
from boom_tasks.settings import DEFAULT_CONFIG, load_settings


def test_default_file_matches_the_typed_defaults():
    # Given the shipped default.yaml, When it is loaded with no environment overrides,
    # Then it validates and agrees with the documented defaults of the settings classes.
    from boom_tasks.settings import Settings

    assert load_settings(DEFAULT_CONFIG, environ={}) == Settings()


def test_environment_overrides_a_key_with_its_type(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("valkey:\n  port: 1234\n")
    s = load_settings(
        cfg, environ={"BOOM_VALKEY__PORT": "6390", "BOOM_BRIDGE__BATCH_WAIT_S": "0.25"}
    )
    assert s.valkey.port == 6390
    assert s.bridge.batch_wait_s == 0.25
    assert s.valkey.url == "redis://127.0.0.1:6390/0"


def test_unknown_key_is_rejected_with_its_path(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("bridge:\n  batch_sise: 10\n")
    with pytest.raises(ConfigError, match=r"bridge\.batch_sise.*unknown key"):
        load_settings(cfg, environ={})


def test_unknown_env_section_is_rejected(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("{}\n")
    with pytest.raises(ConfigError, match="valky"):
        load_settings(cfg, environ={"BOOM_VALKY__PORT": "1"})


def test_invalid_value_and_missing_file_are_clear(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("bridge:\n  batch_size: 0\n")
    with pytest.raises(ConfigError, match=r"bridge\.batch_size"):
        load_settings(cfg, environ={})
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_settings(tmp_path / "absent.yaml", environ={})


def test_resume_mark_above_pause_mark_is_refused(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("bridge:\n  max_queued_alerts: 10\n  resume_queued_alerts: 20\n")
    with pytest.raises(ConfigError, match="resume_queued_alerts"):
        load_settings(cfg, environ={})
