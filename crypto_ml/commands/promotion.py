"""``crypto-ml models``: the model versions, their evaluation and promotion (champion / challenger).

Examples::

    crypto-ml models list                      # every version: status, MASE vs naive, return, reason
    crypto-ml models list --coin bitcoin --json
    crypto-ml models promote bitcoin linear 3 --by alice --reason "reviewed the 2017 backtest"
    crypto-ml models demote bitcoin linear 3 --by alice --reason "drawdown too deep this week"
    crypto-ml models history --coin bitcoin    # the audit trail: who, when, why

A change by hand needs ``--by`` (who) and ``--reason`` (why); both are kept in the audit trail
with the time. Promoting a version demotes the coin's former champion (a coin has one).
"""

from __future__ import annotations

import json


def register(subparsers) -> None:
    models = subparsers.add_parser(
        "models",
        help="model versions: evaluation at training, promotion and demotion (audited)",
    )
    sub = models.add_subparsers(title="models commands", metavar="MODELS_COMMAND")

    p = sub.add_parser("list", help="every version with its promotion status and evaluation")
    p.add_argument("--coin", default=None, help="only this coin")
    p.add_argument("--model", default=None, help="only this model")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    _db(p)
    p.set_defaults(func=cmd_list)

    for name, status in (("promote", "promoted"), ("demote", "demoted")):
        p = sub.add_parser(name, help=f"{name} a version by hand (audited: --by and --reason are required)")
        p.add_argument("coin", help="coin id, e.g. bitcoin")
        p.add_argument("model", help="model name, e.g. linear")
        p.add_argument("version", type=int, help="the version number (see `crypto-ml models list`)")
        p.add_argument("--by", required=True, help="who makes the change (kept in the audit trail)")
        p.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        _db(p)
        p.set_defaults(func=cmd_set, status=status)

    p = sub.add_parser("history", help="the audit trail of promotion changes, oldest first")
    p.add_argument("--coin", default=None, help="only this coin")
    p.add_argument("--model", default=None, help="only this model")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    _db(p)
    p.set_defaults(func=cmd_history)
    models.set_defaults(func=lambda args: models.print_help() or 2)


def _db(p) -> None:
    p.add_argument("--db", default=None, help="database URL (default: $CRYPTO_ML_DATABASE_URL or SQLite)")


def _store(args):
    from crypto_ml.storage.model_store import ModelStore

    return ModelStore(url=args.db)


def _ratio(row: dict) -> str:
    value = (row.get("evaluation") or {}).get("mase_vs_naive")
    return "-" if value is None else f"{value:.2f}×"


def _return(row: dict) -> str:
    value = ((row.get("evaluation") or {}).get("strategy") or {}).get("total_return")
    return "-" if value is None else f"{value * 100:+.1f}%"


def _print_json(rows: list[dict]) -> None:
    print(json.dumps(rows, default=str, indent=1, sort_keys=True))


def cmd_list(args) -> int:
    rows = _store(args).versions(coin=args.coin, model=args.model)
    if args.json:
        _print_json([{k: v for k, v in r.items() if k != "params"} for r in rows])
        return 0
    if not rows:
        print("no model versions recorded")
        return 0
    print(
        f"{'coin':<16} {'model':<8} {'ver':>4} {'train_end':<10} {'status':<9} {'MASE':>6} "
        f"{'return':>7}  reason"
    )
    for r in rows:
        print(
            f"{r['coin']:<16} {r['model']:<8} {r['version']:>4} {r['train_end']!s:<10} "
            f"{r['promotion'] or '-':<9} {_ratio(r):>6} {_return(r):>7}  {r['promotion_reason'] or ''}"
        )
    return 0


def cmd_set(args) -> int:
    from crypto_ml.cli import CLIError

    try:
        row = _store(args).set_promotion(
            args.coin, args.model, args.version, args.status, reason=args.reason, actor=args.by
        )
    except (LookupError, ValueError) as exc:
        raise CLIError(str(exc).strip("'\"")) from None
    print(
        f"{row['coin']} {row['model']} v{row['version']}: {row['promotion']} by {args.by} "
        f"({row['promotion_reason']})"
    )
    return 0


def cmd_history(args) -> int:
    rows = _store(args).promotion_history(coin=args.coin, model=args.model)
    if args.json:
        _print_json(rows)
        return 0
    for r in rows:
        how = "by hand" if r["manual"] else "automatic"
        print(
            f"{r['at']:%Y-%m-%d %H:%M} {r['coin']} {r['model']} v{r['version']}: "
            f"{r['before'] or '-'} -> {r['after']} by {r['actor']} ({how}): {r['reason']}"
        )
    if not rows:
        print("no promotion changes recorded")
    return 0
