"""Tests of settings: overrides beat the environment, which beats `.env`, which beats defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mnist_bot import ConfigError, RecognizerError, config
from mnist_bot.config import (
    DEFAULT_MODEL,
    MODELS_DIR,
    Settings,
    default_db_path,
    load_settings,
    resolve_model_path,
)
from mnist_bot.recognizer import Recognizer

FULL_ENV = {
    "MNIST_DIR": "/data/mnist",
    "MNIST_BOT_MODEL": "/models/mlp.tflite",
    "TELEGRAM_BOT_TOKEN": " 123:abc \n",
    "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/",
    "MNIST_BOT_DB": "/var/lib/feedback.db",
    "MNIST_BOT_ALLOWED_USERS": "11, 22,33",
    "MNIST_BOT_RATE_LIMIT": "12",
}


def test_defaults_when_nothing_is_set() -> None:
    settings = load_settings()
    assert settings == Settings()
    assert settings.mnist_dir is None
    assert settings.model_path == DEFAULT_MODEL
    assert DEFAULT_MODEL.name == "cnn.tflite" and DEFAULT_MODEL.parent.name == "models"
    assert settings.telegram_token is None and settings.telegram_api_base_url is None
    assert settings.db_path == default_db_path()
    assert settings.allowed_user_ids == frozenset()
    assert settings.rate_limit_per_minute == 30


def test_every_variable_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FULL_ENV.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.mnist_dir == Path("/data/mnist")
    assert settings.model_path == Path("/models/mlp.tflite")
    assert settings.telegram_token == "123:abc"
    assert settings.telegram_api_base_url == "http://127.0.0.1:8081"
    assert settings.db_path == Path("/var/lib/feedback.db")
    assert settings.allowed_user_ids == frozenset({11, 22, 33})
    assert settings.rate_limit_per_minute == 12


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# local settings\nTELEGRAM_BOT_TOKEN=999:from-dotenv\n"
        "MNIST_BOT_RATE_LIMIT=5\nMNIST_DIR=/dotenv/mnist\n"
    )
    settings = load_settings()
    assert settings.telegram_token == "999:from-dotenv"
    assert settings.rate_limit_per_minute == 5
    assert settings.mnist_dir == Path("/dotenv/mnist")


def test_dotenv_elsewhere_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=999:from-dotenv\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert load_settings().telegram_token is None


def test_explicit_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "bot.env").write_text("MNIST_BOT_ALLOWED_USERS=7\n")
    assert load_settings(env_file=tmp_path / "bot.env").allowed_user_ids == frozenset({7})
    assert load_settings().allowed_user_ids == frozenset()


def test_environment_beats_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=999:from-dotenv\nMNIST_BOT_DB=dotenv.db\n")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "111:from-env")
    settings = load_settings()
    assert settings.telegram_token == "111:from-env"
    assert settings.db_path == Path("dotenv.db")  # not in the environment: .env still counts


def test_explicit_overrides_beat_environment_and_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("MNIST_BOT_MODEL=dotenv.tflite\nMNIST_BOT_RATE_LIMIT=5\n")
    monkeypatch.setenv("MNIST_BOT_MODEL", "env.tflite")
    monkeypatch.setenv("MNIST_BOT_RATE_LIMIT", "6")
    settings = load_settings(model_path=Path("explicit.tflite"), rate_limit_per_minute=7)
    assert settings.model_path == Path("explicit.tflite")
    assert settings.rate_limit_per_minute == 7


def test_none_overrides_fall_through_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNIST_BOT_MODEL", "env.tflite")
    assert load_settings(model_path=None).model_path == Path("env.tflite")


def test_settings_are_read_when_asked_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().rate_limit_per_minute == 30
    monkeypatch.setenv("MNIST_BOT_RATE_LIMIT", "3")
    assert load_settings().rate_limit_per_minute == 3


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.rate_limit_per_minute = 1  # type: ignore[misc]


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5", "10/min"])
def test_malformed_rate_limit_is_a_config_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MNIST_BOT_RATE_LIMIT", value)
    with pytest.raises(ConfigError, match="MNIST_BOT_RATE_LIMIT") as caught:
        load_settings()
    assert isinstance(caught.value, RecognizerError)
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize("value", ["12,abc", "@alice", "1;2", "1.5"])
def test_malformed_allowed_users_is_a_config_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MNIST_BOT_ALLOWED_USERS", value)
    with pytest.raises(ConfigError, match="MNIST_BOT_ALLOWED_USERS"):
        load_settings()


def test_malformed_value_in_dotenv_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MNIST_BOT_RATE_LIMIT=lots\n")
    with pytest.raises(ConfigError, match="MNIST_BOT_RATE_LIMIT"):
        load_settings()


def test_valid_environment_hides_a_malformed_dotenv_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("MNIST_BOT_RATE_LIMIT=lots\n")
    monkeypatch.setenv("MNIST_BOT_RATE_LIMIT", "9")
    assert load_settings().rate_limit_per_minute == 9


def test_the_default_feedback_file_is_per_user_not_per_directory(tmp_path: Path) -> None:
    # conftest points XDG_DATA_HOME into tmp_path, so platformdirs puts the file there on Linux.
    assert default_db_path() == tmp_path / "user-data" / "mnist-bot" / "feedback.db"
    assert load_settings().db_path == default_db_path()


def test_a_postgresql_url_is_kept_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://bot:pw@db.example.org:5432/feedback"
    monkeypatch.setenv("MNIST_BOT_DB", url)
    assert load_settings().db_path == url  # a Path would fold the "//" and lose the URL
    monkeypatch.setenv("MNIST_BOT_DB", "~/corrections.db")
    assert load_settings().db_path == Path.home() / "corrections.db"


# --- model paths: relative names find the shipped models from any working directory ----------------


@pytest.mark.parametrize("given", ["models/cnn.tflite", "cnn.tflite", "models/mlp.tflite"])
def test_relative_model_paths_resolve_against_the_shipped_models(given: str) -> None:
    # The isolation fixture runs each test in an empty folder, as `make notebook` runs the demo in widgets/.
    resolved = resolve_model_path(given)
    assert resolved == MODELS_DIR / Path(given).name and resolved.is_file()


def test_a_model_in_the_working_directory_wins(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "cnn.tflite").write_bytes(b"mine")
    assert resolve_model_path("models/cnn.tflite") == Path("models/cnn.tflite")
    assert resolve_model_path(Path("models/cnn.tflite")).read_bytes() == b"mine"


@pytest.mark.parametrize("given", ["models/none.tflite", "none.tflite", "/elsewhere/cnn.tflite"])
def test_a_model_found_nowhere_comes_back_unchanged(given: str) -> None:
    assert resolve_model_path(given) == Path(given)


def test_the_default_model_is_found_in_an_installed_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wheel install has no source tree: its models sit under <prefix>/share/mnist-bot/models.
    installed = tmp_path / "prefix" / config.INSTALLED_MODELS
    installed.mkdir(parents=True)
    (installed / "cnn.tflite").write_bytes(b"installed")
    monkeypatch.setattr(config, "model_folders", lambda: (tmp_path / "no-source-tree", installed))
    assert resolve_model_path(DEFAULT_MODEL) == DEFAULT_MODEL  # the source tree's copy exists here
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "no-source-tree")
    gone = tmp_path / "no-source-tree" / "cnn.tflite"
    assert resolve_model_path(gone) == installed / "cnn.tflite"
    assert resolve_model_path("models/cnn.tflite") == installed / "cnn.tflite"


@pytest.mark.slow
def test_recognizer_loads_a_relative_model_path_from_another_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    by_name = Recognizer.load("models/mlp.tflite")
    assert by_name.metadata["name"] == "mlp" and by_name.runtime.name == "litert"
    monkeypatch.setenv("MNIST_BOT_MODEL", "models/dense.tflite")
    assert Recognizer.load().metadata["name"] == "dense"
