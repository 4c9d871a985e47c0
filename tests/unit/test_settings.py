from __future__ import annotations

import pytest

from chalice_app.settings import Settings


def test_defaults_and_overrides_from_the_environment() -> None:
    settings = Settings.from_env({"PBFM_HEARTBEAT_TIMEOUT": "3", "PBFM_ALLOWED_ORIGINS": "http://a, http://b",
                                  "PBFM_COOKIE_SECRET": "s"})
    assert settings.table_name == "pb-fm-webpage-sessions" and settings.bucket_name == "pb-fm-webpage-mvp-assets"
    assert settings.heartbeat_timeout_s == 3.0 and settings.allowed_origins == ("http://a", "http://b")
    assert settings.cookie_secret == "s" and settings.aws_endpoint_url is None


def test_a_local_process_invents_a_secret_but_lambda_must_be_given_one() -> None:
    assert len(Settings.from_env({}).cookie_secret) == 64
    with pytest.raises(RuntimeError, match="PBFM_COOKIE_SECRET"):
        Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "pb-fm-webpage-dev"})
    assert Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f", "PBFM_COOKIE_SECRET": "x"}).cookie_secret == "x"
