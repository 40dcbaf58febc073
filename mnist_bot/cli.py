"""`mnist-bot` command line: train, evaluate, predict, bot, feedback."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mnist_bot.errors import RecognizerError

log = logging.getLogger("mnist_bot")

ARCHES = ("dense", "mlp", "mlp2", "cnn")


def _train_parser(sub: Any) -> None:
    """Add `mnist-bot train`."""
    p = sub.add_parser("train", help="train a model on MNIST and write .keras, .tflite and .json")
    p.add_argument("--arch", choices=ARCHES, default="cnn", help="architecture (default: cnn)")
    p.add_argument("--epochs", type=int, help="epochs (default: 10 for baselines, 15 for the cnn)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--validation-split", type=float, default=0.1)
    p.add_argument("--limit", type=int, help="train on N images only (smoke runs)")
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train-time augmentation (default: on for the cnn only)",
    )
    p.add_argument("--learning-rate", type=float)
    p.add_argument(
        "--bn-momentum",
        type=float,
        default=0.99,
        help="batch-norm momentum of the cnn (use 0.9 for runs of a few hundred steps)",
    )
    p.add_argument(
        "--extra-data",
        type=Path,
        action="append",
        default=[],
        help=".npz with x (N,28,28) uint8 and y (N,), e.g. `mnist-bot feedback export`",
    )
    p.add_argument("--out", type=Path, default=Path("models"), help="output folder (default: models)")
    p.add_argument("--name", help="file stem (default: the architecture)")
    p.add_argument("--mnist-dir", type=Path, help="MNIST folder (default: $MNIST_DIR)")


def _evaluate_parser(sub: Any) -> None:
    """Add `mnist-bot evaluate`."""
    p = sub.add_parser("evaluate", help="measure a model on the MNIST test set")
    p.add_argument("--model", type=Path, help="model file (default: $MNIST_BOT_MODEL or models/cnn.tflite)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--report", type=Path, help="write PNG plots and metrics.json to this folder")
    p.add_argument("--mnist-dir", type=Path, help="MNIST folder (default: $MNIST_DIR)")


def _predict_parser(sub: Any) -> None:
    """Add `mnist-bot predict`."""
    p = sub.add_parser("predict", help="recognise the digit (or number) in image files")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--number", action="store_true", help="read a multi-digit number")
    p.add_argument("--model", type=Path, help="model file (default: the shipped cnn)")


def _extra_parser(sub: Any) -> None:
    """Add `mnist-bot make-extra`."""
    p = sub.add_parser("make-extra", help="render realistic extra training data (photos, drawings) as .npz")
    p.add_argument("out", type=Path, help="output .npz for `mnist-bot train --extra-data`")
    p.add_argument("--photos", type=int, default=6000, help="MNIST training digits photographed")
    p.add_argument("--canvases", type=int, default=6000, help="MNIST training digits re-stroked as drawings")
    p.add_argument("--unipen-renders", type=int, default=2, help="drawings per UNIPEN training sample")
    p.add_argument("--numbers", type=int, default=0, help="photos of 2-10 digit numbers, cut into digits")
    p.add_argument("--handwriting-dir", type=Path, help="folder with unipen_1a_digits.jsonl.gz")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mnist-dir", type=Path, help="MNIST folder (default: $MNIST_DIR)")


def _bot_parser(sub: Any) -> None:
    """Add `mnist-bot bot`."""
    add_bot_options(
        sub.add_parser("bot", help="run the Telegram bot: long polling, or a webhook server with --webhook")
    )


def add_bot_options(p: argparse.ArgumentParser) -> None:
    """Add the bot's options; `mnist-bot bot` and `python -m mnist_bot.bot` share them."""
    p.add_argument("--webhook", metavar="URL", help="public HTTPS URL Telegram posts updates to")
    p.add_argument("--port", type=int, default=8443, help="webhook server port (default: 8443)")
    p.add_argument("--path", help="URL path the webhook server answers (default: the path of URL)")
    p.add_argument("--secret", help="webhook secret token (default: a random one per run)")
    p.add_argument("--listen", default="0.0.0.0", help="webhook server address (default: 0.0.0.0)")
    p.add_argument("--flood-rate", type=float, default=30.0, help="outgoing messages/s (0: off)")
    p.add_argument("--concurrency", type=int, default=64, help="updates handled at once (1: one by one)")


def bot_options(args: argparse.Namespace) -> dict[str, Any]:
    """Return the keyword arguments of `run_bot` from parsed bot options."""
    names = ("port", "path", "secret", "listen", "flood_rate", "concurrency")
    return {"webhook_url": args.webhook} | {name: getattr(args, name) for name in names}


def _feedback_parser(sub: Any) -> None:
    """Add `mnist-bot feedback export|stats`."""
    p = sub.add_parser("feedback", help="corrections collected by the bot and the widget")
    actions = p.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write labelled corrections as .npz for `train --extra-data`")
    export.add_argument("out", type=Path)
    stats = actions.add_parser("stats", help="count corrections by source and label")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    for action in (export, stats):
        action.add_argument(
            "--db",
            metavar="FILE_OR_URL",
            help="SQLite file or postgresql:// URL (default: $MNIST_BOT_DB, else the per-user file)",
        )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="mnist-bot", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        _train_parser,
        _evaluate_parser,
        _predict_parser,
        _extra_parser,
        _bot_parser,
        _feedback_parser,
    ):
        add(sub)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    """Train one architecture and print where the files went."""
    from mnist_bot.data import load_mnist
    from mnist_bot.training.train import TrainConfig, train_model

    cfg = TrainConfig(
        arch=args.arch,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        validation_split=args.validation_split,
        limit=args.limit,
        augment=args.augment,
        learning_rate=args.learning_rate,
        bn_momentum=args.bn_momentum,
        extra_data=tuple(args.extra_data),
        out_dir=args.out,
        name=args.name,
        command=" ".join(["mnist-bot", *args.argv]),
    )
    result = train_model(cfg, load_mnist(args.mnist_dir))
    meta = result.metadata
    print(
        f"{meta['name']}: test accuracy {meta['test_accuracy']:.4f}, "
        f"{meta['parameters']:,} parameters, trained in {meta['training_seconds']:.0f} s"
    )
    print(f"wrote {result.keras_path}, {result.tflite_path}, {result.metadata_path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a model on the MNIST test set; optionally write plots."""
    from mnist_bot.data import load_mnist
    from mnist_bot.recognizer import Recognizer
    from mnist_bot.training.evaluate import evaluate, format_report

    recognizer = Recognizer.load(args.model)
    model_path = args.model or _default_model()
    mnist = load_mnist(args.mnist_dir)
    evaluation = evaluate(recognizer, mnist.test, model_path.name)
    result = evaluation.as_dict() | {"runtime": recognizer.runtime.name}
    if args.report:
        from mnist_bot.training.report import write_report

        files = write_report(evaluation, mnist.test.images, recognizer.metadata, args.report)
        result["report"] = [str(f) for f in files]
    print(json.dumps(result) if args.json else format_report(evaluation))
    if args.report and not args.json:
        print(f"\nreport written to {args.report}/")
    return 0


def _default_model() -> Path:
    """Return the model path the settings point at."""
    from mnist_bot.config import load_settings

    return load_settings().model_path


def _predict_one(recognizer: Any, path: Path, number: bool) -> dict[str, Any]:
    """Predict one file; a bad file becomes an error entry instead of stopping the run."""
    try:
        if number:
            reading = recognizer.read_number(path)
            return {
                "path": str(path),
                "text": reading.text,
                "unsure": reading.unsure,
                "confidence": round(reading.confidence, 6),
                "digits": [p.as_dict() for p in reading.digits],
            }
        return {"path": str(path), **recognizer.predict(path).as_dict()}
    except RecognizerError as exc:
        return {"path": str(path), "error": str(exc)}


def _describe(result: dict[str, Any]) -> str:
    """Render one prediction for people."""
    if "error" in result:
        return f"{result['path']}: {result['error']}"
    flag = " (unsure)" if result["unsure"] else ""
    if "text" in result:
        return f"{result['path']}: {result['text']}, {result['confidence']:.0%} sure{flag}"
    return f"{result['path']}: {result['digit']}, {result['confidence']:.0%} sure{flag}"


def cmd_predict(args: argparse.Namespace) -> int:
    """Recognise digits in files; unreadable files are reported, not fatal."""
    from mnist_bot.recognizer import Recognizer

    recognizer = Recognizer.load(args.model)
    for path in args.images:
        result = _predict_one(recognizer, path, args.number)
        print(json.dumps(result) if args.json else _describe(result))
    return 0


def cmd_make_extra(args: argparse.Namespace) -> int:
    """Render realistic extra training data from MNIST training digits and UNIPEN writers."""
    from mnist_bot.data import load_mnist
    from mnist_bot.training.realistic import build_extra, save_extra

    mnist = load_mnist(args.mnist_dir)
    handwriting = args.handwriting_dir or Path(mnist.source).parent / "handwriting"
    extra = build_extra(
        mnist.train,
        handwriting if handwriting.is_dir() else None,
        args.photos,
        args.canvases,
        args.unipen_renders,
        args.seed,
        args.numbers,
    )
    save_extra(extra, args.out)
    print(f"wrote {len(extra.labels)} digits to {args.out}")
    return 0


def cmd_bot(args: argparse.Namespace) -> int:
    """Run the Telegram bot until SIGINT/SIGTERM."""
    from mnist_bot.bot import run_bot
    from mnist_bot.config import load_settings

    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)
    run_bot(load_settings(), **bot_options(args))
    return 0


def _feedback_store(db: Path | str) -> Any:
    """Open the corrections store; a SQLite file not created yet reads as an empty store."""
    from mnist_bot.feedback import FeedbackStore

    if isinstance(db, Path) and not db.exists():
        return FeedbackStore(":memory:")  # a fresh install has zero corrections; a read creates no file
    return FeedbackStore(db)


def cmd_feedback(args: argparse.Namespace) -> int:
    """Export or summarise the stored corrections."""
    from mnist_bot.config import database, load_settings
    from mnist_bot.feedback import describe

    db = database(args.db) if args.db else load_settings().db_path
    with _feedback_store(db) as store:
        if args.action == "export":
            print(f"wrote {store.export(args.out)} labelled digits to {args.out}")
            return 0
        summary = {"database": describe(db), **store.stats()}
    lines = (f"{key}: {value}" for key, value in summary.items())
    print(json.dumps(summary) if args.json else "\n".join(lines))
    return 0


COMMANDS = {
    "make-extra": cmd_make_extra,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "bot": cmd_bot,
    "feedback": cmd_feedback,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; typed errors become a message on stderr and exit code 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded in model metadata: the real arguments, also when called as main([...])
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except RecognizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
