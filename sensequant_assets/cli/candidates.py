"""``sensequant candidates``: list, show, approve, reject, roll back and verify candidate runs.

The registry is the one place a reviewer decides; approving here is what the promotion sensor
acts on. Every change lands in the registry's append-only audit log with the name given; an
approval also records the SHA-256 of the manifest and briefing it approved, which ``show``
prints and deployment checks. ``verify`` checks the registry file was not changed outside
sensequant (the check every deployment and rollback runs first). An approval also records the
OS user and host it came from, and needs ``--override-gate --reason`` to go against the gate
(:mod:`~sensequant_assets.registry.approval`).
"""

from __future__ import annotations

import argparse
import json
import sys

from sensequant_assets.artifacts import ArtifactLayout
from sensequant_assets.live.demotion import pin, unpin
from sensequant_assets.live.notify import Notifier
from sensequant_assets.orchestration.runs import EXIT_FAILED, EXIT_OK, UsageError
from sensequant_assets.registry import STATUSES, DeploymentConflictError, StateManager
from sensequant_assets.registry.approval import ApprovalTerms, production_refusal
from sensequant_assets.release.deployment import current_production, rollback_production
from sensequant_assets.settings import Settings


def registry(settings: Settings, *, read_only: bool = False) -> StateManager:
    """The registry; ``read_only`` for the commands that only look (they create nothing, and
    a registry not created yet lists as empty)."""
    return StateManager(ArtifactLayout.of(settings).registry, read_only=read_only)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    runs = registry(settings, read_only=True).get_candidate_runs(status=args.status)
    if not runs:
        print("no candidate runs" + (f" with status {args.status}" if args.status else ""))
        return EXIT_OK
    print(f"{'run id':<32} {'status':<17} {'gate':<13} {'DSR':>6}  symbols")
    for run in runs:
        score = "—" if run.score is None else f"{run.score:.3f}"
        flag = ("  (dry run)" if run.dryrun else "") + ("  (synthetic)" if run.synthetic else "")
        print(
            f"{run.run_id:<32} {run.status:<17} {run.recommendation or '—':<13} {score:>6}  "
            f"{len(run.symbols)}{flag}"
        )
    return EXIT_OK


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    manager = registry(settings, read_only=True)
    run = manager.get_candidate_run(args.run_id)
    print(json.dumps(run.to_dict(), indent=2))
    print("\naudit log:")
    for change in manager.audit_log(args.run_id):
        note = f"  ({change.note})" if change.note else ""
        print(
            f"  {change.at.isoformat(timespec='seconds')}  {change.from_status or '(new)'} -> "
            f"{change.to_status}  by {change.by}{note}"
        )
        for name, digest in change.evidence.items():
            print(f"      sha256 {digest}  {name}")
    return EXIT_OK


def cmd_approve(args: argparse.Namespace, settings: Settings) -> int:
    if args.reason is not None and not args.override_gate:
        raise UsageError("--reason goes with --override-gate (why you approve against the gate)")
    if args.override_gate and args.reason is None:
        raise UsageError("--override-gate needs --reason TEXT (why you approve against the gate)")
    terms = ApprovalTerms(args.reason, settings.allow_synthetic_promotion)
    run = registry(settings).approve_candidate_run(args.run_id, approved_by=args.by, terms=terms)
    print(
        f"{run.run_id} approved by {args.by} (os user {run.approved_os_user} on "
        f"{run.approved_host})"
        + (f", overriding the gate's {run.recommendation}" if run.gate_override_reason else "")
    )
    refusal = production_refusal(run)
    print(f"  {refusal}" if refusal else "  the promotion sensor will deploy it")
    for name, digest in run.approved_evidence.items():
        print(f"  bound sha256 {digest}  {name}")
    details = {"by": args.by, "recommendation": run.recommendation}
    if run.gate_override_reason:
        details["overriding the gate"] = run.gate_override_reason
    delivery = Notifier.of(settings)("approved", run.run_id, details)
    if delivery.status == "failed":
        print(f"  notification not delivered: {delivery.detail}")
    return EXIT_OK


def cmd_reject(args: argparse.Namespace, settings: Settings) -> int:
    run = registry(settings).reject_candidate_run(args.run_id, args.by, args.reason)
    print(f"{run.run_id} rejected by {args.by}: {args.reason}")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    layout = ArtifactLayout.of(settings)
    try:
        deployment = rollback_production(layout, registry(settings), by=args.by)
    except (FileNotFoundError, DeploymentConflictError) as exc:  # a deleted bundle, a race
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"production rolled back to {deployment.run_id} by {args.by}")
    return EXIT_OK


def cmd_pin(args: argparse.Namespace, settings: Settings) -> int:
    layout = ArtifactLayout.of(settings)
    live = current_production(layout)
    if live != args.run_id:
        raise UsageError(f"{args.run_id} is not the production model ({live or 'none'} is)")
    pin(layout, args.run_id, args.by, args.reason)
    print(f"{args.run_id} pinned by {args.by}: the demotion sensor will not roll it back")
    return EXIT_OK


def cmd_unpin(args: argparse.Namespace, settings: Settings) -> int:
    done = unpin(ArtifactLayout.of(settings))
    print("unpinned: automatic demotion applies again" if done else "nothing was pinned")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 1 if the registry was changed outside sensequant (what deployment refuses)."""
    manager = registry(settings, read_only=True)
    check = manager.verify()
    print(f"{manager.where}: {check.summary()}")
    for problem in check.problems[1:]:
        print(f"  also: {problem}")
    return EXIT_OK if check.intact else EXIT_FAILED


def add_parser(sub: argparse._SubParsersAction) -> None:
    candidates = sub.add_parser("candidates", help="review candidate runs in the registry")
    actions = candidates.add_subparsers(dest="candidates_command", required=True)
    listing = actions.add_parser("list", help="candidate runs, newest first")
    listing.add_argument("--status", choices=STATUSES)
    listing.set_defaults(handler=cmd_list)
    show = actions.add_parser("show", help="one run and its audit log")
    show.add_argument("run_id")
    show.set_defaults(handler=cmd_show)
    approve = actions.add_parser("approve", help="approve a run that is ready for review")
    approve.add_argument("run_id")
    approve.add_argument("--by", required=True, help="your name (recorded in the audit log)")
    approve.add_argument(
        "--override-gate",
        action="store_true",
        help="approve a run the promotion gate did not recommend (needs --reason)",
    )
    approve.add_argument("--reason", help="why you approve against the gate (audit log)")
    approve.set_defaults(handler=cmd_approve)
    reject = actions.add_parser("reject", help="reject a run, with a reason")
    reject.add_argument("run_id")
    reject.add_argument("--by", required=True)
    reject.add_argument("--reason", required=True)
    reject.set_defaults(handler=cmd_reject)
    rollback = actions.add_parser("rollback", help="redeploy the previous production model")
    rollback.add_argument("--by", required=True)
    rollback.set_defaults(handler=cmd_rollback)
    pin_parser = actions.add_parser(
        "pin", help="stop automatic demotion of the production model (it must be live)"
    )
    pin_parser.add_argument("run_id")
    pin_parser.add_argument("--by", required=True)
    pin_parser.add_argument("--reason", required=True)
    pin_parser.set_defaults(handler=cmd_pin)
    unpin_parser = actions.add_parser("unpin", help="let automatic demotion judge production again")
    unpin_parser.set_defaults(handler=cmd_unpin)
    verify = actions.add_parser(
        "verify", help="check the audit log's hash chains, triggers and statuses (exit 1: broken)"
    )
    verify.set_defaults(handler=cmd_verify)
