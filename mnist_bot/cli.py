"""`mnist-bot` command line: train, evaluate, predict, bot, feedback."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mnist_bot.errors import ConfigError, RecognizerError

log = logging.getLogger("mnist_bot")

ARCHES = ("dense", "mlp", "mlp2", "cnn")
DESCRIPTION = "Read handwritten digits and numbers in photos and drawings; train and evaluate the models."
TRAIN_PACKAGES = {"tensorflow", "keras", "matplotlib"}
TRAIN_EXTRA = 'install the training extra: pip install "mnist-bot[train]"'


def _train_parser(sub: Any) -> None:
    """Add `mnist-bot train`."""
    p = sub.add_parser("train", help="train a model on MNIST and write .keras, .tflite and .json")
    p.add_argument("--arch", choices=ARCHES, default="cnn", help="architecture (default: cnn)")
    p.add_argument(
        "--epochs", type=int, metavar="N", help="epochs (default: 10 for baselines, 15 for the cnn)"
    )
    p.add_argument("--batch-size", type=int, default=128, metavar="N", help="images per step (default: 128)")
    p.add_argument("--seed", type=int, default=1, metavar="N", help="random seed (default: 1)")
    p.add_argument(
        "--validation-split",
        type=float,
        default=0.1,
        metavar="FRACTION",
        help="share of the training images held out for validation (default: 0.1)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="train on N images only (smoke runs)")
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train-time augmentation (default: on for the cnn only)",
    )
    p.add_argument(
        "--learning-rate",
        type=float,
        metavar="RATE",
        help="initial learning rate (default: 0.002 for the cnn, 0.001 for the others)",
    )
    p.add_argument(
        "--bn-momentum",
        type=float,
        default=0.99,
        metavar="M",
        help="batch-norm momentum of the cnn (use 0.9 for runs of a few hundred steps)",
    )
    p.add_argument(
        "--extra-data",
        type=Path,
        action="append",
        default=[],
        metavar="NPZ",
        help="add this .npz (repeatable) with x (N,28,28) uint8 and y (N,), e.g. `mnist-bot feedback export`",
    )
    p.add_argument(
        "--init-from",
        type=Path,
        metavar="KERAS",
        help="go on training this .keras model (fine-tuning) instead of starting from fresh weights",
    )
    p.add_argument(
        "--out", type=Path, default=Path("models"), metavar="DIR", help="output folder (default: models)"
    )
    p.add_argument("--name", help="file stem (default: the architecture)")
    _mnist_dir_option(p)


def _train_reject_parser(sub: Any) -> None:
    """Add `mnist-bot train-reject`."""
    p = sub.add_parser(
        "train-reject",
        help="train the 'not a digit' head on the CNN's frozen features and ship it in the CNN's .tflite",
    )
    p.add_argument("--epochs", type=int, default=20, metavar="N", help="epochs of the head (default: 20)")
    p.add_argument("--seed", type=int, default=21, metavar="N", help="seed of the renders (default: 21)")
    p.add_argument(
        "--handwriting-dir",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder with the UNIPEN digits and letters (unipen_1a_digits / unipen_1bcd_letters .jsonl.gz)",
    )
    p.add_argument(
        "--model",
        type=Path,
        default=Path("models/cnn.keras"),
        metavar="PATH",
        help="the digit model whose features the head reads, its weights kept (default: models/cnn.keras)",
    )
    p.add_argument(
        "--renders",
        type=Path,
        metavar="FILE",
        help="an .npz of the rendered inputs: read if it exists, else rendered and saved there "
        "(the head then retrains in seconds instead of rendering for about 18 minutes)",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where the combined .tflite, reject.keras and the rule in the model's .json go "
        "(default: beside --model, replacing the digit-only .tflite)",
    )
    _mnist_dir_option(p)


def _mnist_dir_option(p: argparse.ArgumentParser) -> None:
    """Add --mnist-dir, saying where MNIST is looked for."""
    p.add_argument(
        "--mnist-dir",
        type=Path,
        metavar="DIR",
        help="folder with the MNIST IDX files or mnist.npz (default: $MNIST_DIR, then ~/.keras/datasets)",
    )


def _evaluate_parser(sub: Any) -> None:
    """Add `mnist-bot evaluate`."""
    p = sub.add_parser("evaluate", help="measure a model on the MNIST test set")
    p.add_argument(
        "--model",
        type=Path,
        metavar="FILE",
        help="model file (default: $MNIST_BOT_MODEL or models/cnn.tflite)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--report", type=Path, metavar="DIR", help="write PNG plots and metrics.json to this folder"
    )
    _mnist_dir_option(p)


def _predict_parser(sub: Any) -> None:
    """Add `mnist-bot predict`."""
    p = sub.add_parser("predict", help="read the digits, numbers or pages of digits in image files")
    p.add_argument(
        "images", nargs="+", type=Path, metavar="IMAGE", help="photo or drawing (PNG, JPEG, HEIC...)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--number", action="store_true", help="accepted for compatibility; numbers and pages are always read"
    )
    p.add_argument(
        "--annotate",
        type=Path,
        metavar="OUT",
        help="write the image with each digit's box and reading: a PNG file for one IMAGE; for several, "
        "a folder (IMAGE-NAME.png in it) or a name with {stem}, e.g. 'out/{stem}-read.png'",
    )
    p.add_argument(
        "--model", type=Path, metavar="FILE", help="model file (default: $MNIST_BOT_MODEL or the shipped cnn)"
    )


def _explain_parser(sub: Any) -> None:
    """Add `mnist-bot explain`."""
    p = sub.add_parser("explain", help="show each stage of reading an image as one strip of pictures")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="photo or drawing to explain")
    p.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder for IMAGE-NAME.png and .json"
    )
    p.add_argument(
        "--model", type=Path, metavar="FILE", help="model file (default: $MNIST_BOT_MODEL or the shipped cnn)"
    )


def _extra_parser(sub: Any) -> None:
    """Add `mnist-bot make-extra`."""
    p = sub.add_parser("make-extra", help="render realistic extra training data (photos, drawings) as .npz")
    p.add_argument("out", type=Path, help="output .npz for `mnist-bot train --extra-data`")
    p.add_argument("--photos", type=int, default=6000, metavar="N", help="MNIST training digits photographed")
    p.add_argument(
        "--canvases", type=int, default=6000, metavar="N", help="MNIST training digits re-stroked as drawings"
    )
    p.add_argument(
        "--unipen-renders", type=int, default=2, metavar="N", help="drawings per UNIPEN training sample"
    )
    p.add_argument(
        "--numbers", type=int, default=0, metavar="N", help="photos of 2-10 digit numbers, cut into digits"
    )
    p.add_argument(
        "--flagged-ones",
        type=int,
        default=0,
        metavar="N",
        help="MNIST 1s given a European flag (photos, drawings)",
    )
    p.add_argument(
        "--handwriting-dir", type=Path, metavar="DIR", help="folder with unipen_1a_digits.jsonl.gz"
    )
    p.add_argument("--seed", type=int, default=1, metavar="N", help="random seed (default: 1)")
    _mnist_dir_option(p)


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
    p.add_argument(
        "--listen", default="0.0.0.0", metavar="ADDRESS", help="webhook server address (default: 0.0.0.0)"
    )
    p.add_argument(
        "--flood-rate",
        type=float,
        default=30.0,
        metavar="N",
        help="outgoing messages/s (default: 30; 0: off)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=64,
        metavar="N",
        help="updates handled at once (default: 64; 1: one by one)",
    )


def bot_options(args: argparse.Namespace) -> dict[str, Any]:
    """Return the keyword arguments of `run_bot` from parsed bot options."""
    names = ("port", "path", "secret", "listen", "flood_rate", "concurrency")
    return {"webhook_url": args.webhook} | {name: getattr(args, name) for name in names}


def _feedback_parser(sub: Any) -> None:
    """Add `mnist-bot feedback export|stats`."""
    p = sub.add_parser("feedback", help="corrections collected by the bot and the widget")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write labelled corrections as .npz for `train --extra-data`")
    export.add_argument("out", type=Path, metavar="NPZ", help="the .npz file to write")
    stats = actions.add_parser("stats", help="count corrections by source and label")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    for action in (export, stats):
        action.add_argument(
            "--db",
            metavar="FILE_OR_URL",
            help="SQLite file or postgresql:// URL (default: $MNIST_BOT_DB, else the per-user file)",
        )


def version() -> str:
    """Return the installed package's version."""
    try:
        return importlib.metadata.version("mnist-bot")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _add_verbose(parser: argparse.ArgumentParser, default: Any) -> None:
    """Add -v/--verbose; subcommands take it too, without overriding one given before them."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="log more, including what TensorFlow and LiteRT print on stderr",
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="mnist-bot", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    _add_verbose(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        _train_parser,
        _train_reject_parser,
        _evaluate_parser,
        _predict_parser,
        _explain_parser,
        _extra_parser,
        _bot_parser,
        _feedback_parser,
    ):
        add(sub)
    for command in sub.choices.values():
        _add_verbose(command, argparse.SUPPRESS)
    return parser


def _training_import(module: str) -> Any:
    """Import a training module, or say which extra to install when TensorFlow or matplotlib is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in TRAIN_PACKAGES:
            raise
        raise ConfigError(
            f"This command needs {exc.name.split('.')[0]}, which serving does without: {TRAIN_EXTRA}."
        ) from exc


def cmd_train(args: argparse.Namespace) -> int:
    """Train one architecture and print where the files went."""
    from mnist_bot.data import load_mnist

    train = _training_import("mnist_bot.training.train")
    cfg = train.TrainConfig(
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
        init_from=args.init_from,
        out_dir=args.out,
        name=args.name,
        command=" ".join(["mnist-bot", *args.argv]),
    )
    result = train.train_model(cfg, load_mnist(args.mnist_dir))
    meta = result.metadata
    print(
        f"{meta['name']}: test accuracy {meta['test_accuracy']:.4f}, "
        f"{meta['parameters']:,} parameters, trained in {meta['training_seconds']:.0f} s"
    )
    print(f"wrote {result.keras_path}, {result.tflite_path}, {result.metadata_path}")
    return 0


def cmd_train_reject(args: argparse.Namespace) -> int:
    """Render the reject's data, train its head, calibrate its rule, and write the combined model."""
    from mnist_bot.data import load_mnist
    from mnist_bot.training import reject

    train_reject = _training_import("mnist_bot.training.train_reject")
    if args.renders is not None and args.renders.is_file():
        data, sets = reject.load_renders(args.renders)
    else:
        train = load_mnist(args.mnist_dir).train
        data = reject.build_reject_data(train, args.handwriting_dir, reject.RejectCounts(), args.seed)
        sets = reject.calibration_inputs(args.handwriting_dir, 2000, args.seed + 10)
        if args.renders is not None:
            reject.save_renders(args.renders, data, sets)
    calibration = train_reject.Calibration(sets)
    out = args.out or args.model.parent
    command = " ".join(["mnist-bot", *args.argv])
    result = train_reject.train_reject(
        data, calibration, args.model, out, epochs=args.epochs, command=command
    )
    model_json = args.model.with_suffix(".json")
    train_reject.write_metadata(result, model_json, out / model_json.name)
    rule = result.metadata["reject"]
    print(
        f"reject: on a page no digit when P(digit) < {rule['low']:.3g}, or < {rule['doubtful']:.3g} "
        f"and unsure; alone when < {rule['alone']:.3g}, or < {rule['alone_doubtful']:.3g} and unsure"
    )
    for name, figures in rule["calibration"].items():
        rejected = figures.get("non_digits_rejected")
        tail = "" if rejected is None else f", {rejected:.2%} of non-digits rejected"
        tail += "" if rejected is None else f" ({figures['alone_rejected']:.2%} alone)"
        print(f"  {name}: {figures['n']:.0f} inputs, {figures['digits_lost']:.2%} of digits lost{tail}")
    print(f"wrote {result.tflite_path}")
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
        write_report = _training_import("mnist_bot.training.report").write_report
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


def _digit_dict(prediction: Any) -> dict[str, Any]:
    """Return one digit of a page for JSON: the prediction's fields and its box [x, y, w, h]."""
    box = prediction.box
    return prediction.as_dict() | {"box": None if box is None else [box.x, box.y, box.w, box.h]}


def page_dict(path: Path, page: Any) -> dict[str, Any]:
    """Return a page reading as the CLI's JSON object; one digit keeps its old top-level fields."""
    lines = [{"text": line.text, "digits": [_digit_dict(p) for p in line.digits]} for line in page.lines]
    result: dict[str, Any] = {"path": str(path), "text": page.text, "lines": lines}
    digits = page.digits
    if len(digits) == 1:
        return result | digits[0].as_dict()
    # "digits" and "confidence" are what `--number` printed before pages: kept for its scripts.
    return result | {
        "unsure": page.unsure,
        "confidence": round(page.confidence, 6),
        "digits": [_digit_dict(p) for p in digits],
        "rotation": page.rotation,
    }


def annotation_path(out: Path, path: Path, several: bool) -> Path:
    """Return where an input's annotated picture goes: OUT itself, OUT/{stem}.png or the {stem} pattern."""
    if "{stem}" in str(out):
        return Path(str(out).replace("{stem}", path.stem))
    if several or out.is_dir():
        return out / f"{path.stem}.png"
    return out


def _save_annotation(picture: Any, out: Path) -> None:
    """Write an annotated picture as PNG; a folder or file that cannot be written is a usage error."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        picture.save(out, format="PNG")
    except OSError as exc:
        raise ConfigError(f"Cannot write the annotated image {out}: {exc.strerror or exc}.") from exc


def _predict_one(recognizer: Any, path: Path, annotate_to: Path | None) -> dict[str, Any]:
    """Read one file; a bad file becomes an error entry instead of stopping the run."""
    from mnist_bot.annotate import annotate

    try:
        page = recognizer.read(path)
        if annotate_to is not None:  # the read checked the file's size and that it decodes
            _save_annotation(annotate(path, page), annotate_to)
        return page_dict(path, page)
    except RecognizerError as exc:
        return {"path": str(path), "error": str(exc)}


def _describe(result: dict[str, Any]) -> str:
    """Render one reading for people: one line for a digit or a number, the page's lines below its path."""
    if "error" in result:
        return f"{result['path']}: {result['error']}"
    flag = " (unsure)" if result["unsure"] else ""
    if len(result["lines"]) > 1:
        head = f"{result['path']}: {len(result['lines'])} lines, {result['confidence']:.0%} sure{flag}"
        return "\n".join([head, result["text"]])
    return f"{result['path']}: {result['text']}, {result['confidence']:.0%} sure{flag}"


def cmd_predict(args: argparse.Namespace) -> int:
    """Read digits in files; unreadable files are reported, not fatal."""
    from mnist_bot.recognizer import Recognizer

    recognizer = Recognizer.load(args.model)
    unread = 0
    several = len(args.images) > 1
    for path in args.images:
        out = None if args.annotate is None else annotation_path(args.annotate, path, several)
        result = _predict_one(recognizer, path, out)
        unread += "error" in result
        print(json.dumps(result) if args.json else _describe(result))
    return 1 if unread else 0  # scripts can tell a run where an input could not be read


def cmd_explain(args: argparse.Namespace) -> int:
    """Write a strip of each stage for every image, and say what was read."""
    from mnist_bot.explain import explain, write
    from mnist_bot.recognizer import Recognizer

    recognizer = Recognizer.load(args.model)
    unread = 0
    for path in args.images:
        try:
            explanation = explain(recognizer, path)
        except RecognizerError as exc:  # not even decoded: nothing to show
            print(f"{path}: {exc}")
            unread += 1
            continue
        png, _ = write(explanation, args.out, path.stem)
        text = explanation.reading.text if explanation.reading is not None else explanation.error
        print(f"{path}: {text} (stages in {png})")
        unread += explanation.reading is None
    return 1 if unread else 0


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
        args.flagged_ones,
    )
    save_extra(extra, args.out)
    print(f"wrote {len(extra.labels)} digits to {args.out}")
    return 0


def cmd_bot(args: argparse.Namespace) -> int:
    """Run the Telegram bot until SIGINT/SIGTERM."""
    from mnist_bot.bot import run_bot
    from mnist_bot.config import load_settings

    # A bot's operator wants its INFO lines (started, stopped, retries); --verbose adds everyone's DEBUG.
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


def configure_logging(verbose: bool) -> None:
    """Log warnings; with --verbose, our DEBUG, everyone's INFO and the native libraries' stderr."""
    if not verbose:
        # TensorFlow's C++ logging reads this once, when it is imported (training, the Keras fallback).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # At DEBUG, mnist_bot.runtime lets LiteRT's own stderr lines through (runtime.native_logs_muted).
    log.setLevel(logging.DEBUG if verbose else logging.NOTSET)
    logging.getLogger("absl").setLevel(logging.INFO if verbose else logging.ERROR)


COMMANDS = {
    "make-extra": cmd_make_extra,
    "train": cmd_train,
    "train-reject": cmd_train_reject,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "explain": cmd_explain,
    "bot": cmd_bot,
    "feedback": cmd_feedback,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; typed errors become a message on stderr and exit code 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded in model metadata: the real arguments, also when called as main([...])
    configure_logging(args.verbose)
    try:
        return COMMANDS[args.command](args)
    except RecognizerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
