"""Settings read from the environment and a `.env` file, only when asked."""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from platformdirs import user_data_dir

from mnist_bot.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = PROJECT_ROOT / "models"
# Where a wheel install puts the served models (pyproject's data-files); the source tree has MODELS_DIR.
INSTALLED_MODELS = Path("share", "mnist-bot", "models")
DEFAULT_MODEL = MODELS_DIR / "cnn.tflite"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def default_db_path() -> Path:
    """Return the per-user feedback file in the platform's user data folder, shared from any directory."""
    # A function, not a constant: platformdirs reads the environment (HOME, XDG_DATA_HOME).
    return Path(user_data_dir("mnist-bot", appauthor=False)) / "feedback.db"


def is_postgres_url(text: str) -> bool:
    """Tell a PostgreSQL URL from a SQLite file name."""
    return text.startswith(POSTGRES_SCHEMES)


def database(text: str) -> Path | str:
    """Parse a feedback database setting: a `postgresql://` URL stays text, anything else is a file."""
    return text if is_postgres_url(text) else Path(text).expanduser()


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with explicit arguments beating the environment."""

    mnist_dir: Path | None = None
    model_path: Path = DEFAULT_MODEL
    telegram_token: str | None = None
    telegram_api_base_url: str | None = None
    db_path: Path | str = field(default_factory=default_db_path)  # a SQLite file or a postgresql:// URL
    allowed_user_ids: frozenset[int] = field(default_factory=frozenset)
    rate_limit_per_minute: int = 30


def model_folders() -> tuple[Path, ...]:
    """Return where the shipped models are: the source tree's `models/`, then a wheel's installed copy."""
    return (MODELS_DIR, Path(sysconfig.get_path("data")) / INSTALLED_MODELS)


def resolve_model_path(path: str | Path) -> Path:
    """Find a model file as given, else among the shipped models, so any working directory works.

    `models/cnn.tflite` and `cnn.tflite` name the shipped CNN unless the working directory has
    such a file; the default model is found in a wheel's installed copy too. A path found nowhere
    comes back unchanged, for the error message.
    """
    path = Path(path).expanduser()
    name = None if path.exists() else _shipped_name(path)
    if name is None:
        return path
    found = [folder / name for folder in model_folders() if (folder / name).is_file()]
    return found[0] if found else path


def _shipped_name(path: Path) -> Path | None:
    """Return `path` relative to a models folder, or None for an absolute path elsewhere."""
    if path.is_absolute():
        return path.relative_to(MODELS_DIR) if path.is_relative_to(MODELS_DIR) else None
    return Path(*path.parts[1:]) if len(path.parts) > 1 and path.parts[0] == "models" else path


def _environment(env_file: Path | None) -> dict[str, str]:
    """Merge `.env` values under the real environment (the environment wins)."""
    path = env_file if env_file is not None else Path.cwd() / ".env"
    merged = {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}
    merged.update(os.environ)
    return merged


def _user_ids(text: str) -> frozenset[int]:
    """Parse a comma-separated list of Telegram user ids."""
    try:
        return frozenset(int(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError as exc:
        raise ConfigError(f"MNIST_BOT_ALLOWED_USERS must be comma-separated numbers, got {text!r}.") from exc


def _positive_int(name: str, text: str) -> int:
    """Parse a positive integer setting."""
    if not text.isdigit() or int(text) <= 0:
        raise ConfigError(f"{name} must be a positive whole number, got {text!r}.")
    return int(text)


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """Translate environment variables into Settings fields."""
    values: dict[str, Any] = {}
    if env.get("MNIST_DIR"):
        values["mnist_dir"] = Path(env["MNIST_DIR"])
    if env.get("MNIST_BOT_MODEL"):
        values["model_path"] = Path(env["MNIST_BOT_MODEL"])
    if env.get("TELEGRAM_BOT_TOKEN"):
        values["telegram_token"] = env["TELEGRAM_BOT_TOKEN"].strip()
    if env.get("TELEGRAM_API_BASE_URL"):
        values["telegram_api_base_url"] = env["TELEGRAM_API_BASE_URL"].rstrip("/")
    if env.get("MNIST_BOT_DB"):
        values["db_path"] = database(env["MNIST_BOT_DB"].strip())
    if env.get("MNIST_BOT_ALLOWED_USERS"):
        values["allowed_user_ids"] = _user_ids(env["MNIST_BOT_ALLOWED_USERS"])
    if env.get("MNIST_BOT_RATE_LIMIT"):
        values["rate_limit_per_minute"] = _positive_int("MNIST_BOT_RATE_LIMIT", env["MNIST_BOT_RATE_LIMIT"])
    return values


def load_settings(env_file: Path | None = None, **overrides: Any) -> Settings:
    """Read settings: explicit overrides, then the environment and `.env`, then defaults."""
    settings = replace(Settings(), **_from_environment(_environment(env_file)))
    explicit = {key: value for key, value in overrides.items() if value is not None}
    return replace(settings, **explicit)
