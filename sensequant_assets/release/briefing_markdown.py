"""The promotion briefing as Markdown: ``promotion_briefing.md``, the document a reviewer reads.

It renders the dictionary ``release.briefing.build_briefing`` assembled and adds nothing: every
figure on the page is one of the JSON briefing's, so the two files cannot disagree.
"""

from __future__ import annotations

from typing import Any

from sensequant_assets.evaluation.skill import MIN_SYMBOLS
from sensequant_assets.release.briefing import SKILL_MEASURES
from sensequant_assets.release.quality_section import quality_markdown


def render_markdown(briefing: dict[str, Any]) -> str:
    """``promotion_briefing.md`` from the briefing data."""
    b = briefing
    lines = [f"# Promotion briefing: {b['release_id']}", ""]
    lines.append(f"- **Status:** {b['status']}")
    lines.append(f"- **Recommendation:** {b['recommendation'] or 'none (gate not reached)'}")
    if b["failed_phase"]:
        lines.append(f"- **Failed phase:** {b['failed_phase']}: {b['error']}")
    if b["dagster_run_id"]:
        lines.append(f"- **Dagster run:** {b['dagster_run_id']}")
    lines += ["", "## Recommendation", ""]
    lines += [f"- {r}" for r in b["recommendation_reasons"]] or ["- gate not reached"]
    lines += _characteristics_md(b["gate_characteristics"])
    lines += _section("Training summary", b["training_summary"], _training_md)
    lines += _section("Validation results", b["validation_results"], _validation_md)
    lines += _section("Statistical tests", b["statistical_tests"], _tests_md)
    lines += _section("Stress tests", b["stress_tests"], _stress_md)
    lines += _section("Data quality", b.get("data_quality"), quality_markdown)
    risks = b["risk_assessment"]
    lines += ["", "## Risk assessment", "", "**Outstanding issues**", ""]
    lines += [f"- {i}" for i in risks["outstanding_issues"]] or ["- none"]
    lines += ["", "**Warnings**", ""]
    lines += [f"- {w}" for w in risks["warnings"]] or ["- none"]
    lines += ["", "**Manual review**", ""]
    lines += [f"- [ ] {item}" for item in risks["manual_review"]]
    lines += _section("Artifacts", b["artifacts"], _artifacts_md)
    lines += ["", "## Next steps", ""]
    lines += [f"{k}. {step}" for k, step in enumerate(b["next_steps"], start=1)]
    return "\n".join(lines) + "\n"


def _characteristics_md(c: dict[str, Any]) -> list[str]:
    lines = ["", "**How far to trust this gate**", ""]
    measured = c["measured"]
    if measured is None:
        return [*lines, f"- Gate version {c['gate_version']} has no measured false-promotion "
                "rate or power yet: run bench/bench_calibration.py --summary"]  # fmt: skip

    def scale(entry: dict[str, Any]) -> str:
        s = entry["scale"]
        return f"{s['n_symbols']} symbols, {s['start']}..{s['end']}"

    def rate(entry: dict[str, Any]) -> str:
        low, high = entry["interval"]
        return f"{entry['approved']}/{entry['universes']} ({100 * low:.0f}–{100 * high:.0f}%)"

    null = measured["false_promotion"]
    if null is None:
        lines.append("- False promotions: not measured for this gate version")
    else:
        lines.append(
            f"- False promotions on universes with no signal: {rate(null)}, at most "
            f"{100 * null['upper_bound']:.1f}% (95% bound), measured at {scale(null)}"
        )
    for ic, entry in measured["power"].items():
        lines.append(
            f"- Approved with a planted rank IC of {ic}: {rate(entry)}, measured at {scale(entry)}"
        )
    lines.append(
        f"- This candidate: {c['requested_scale']['n_symbols']} symbols, "
        f"{c['requested_scale']['oos_sessions']} out-of-sample sessions; the figures above are "
        "from the nearest measured scale"
    )
    return lines


def _section(title: str, data: Any, render: Any) -> list[str]:
    if data is None:
        return ["", f"## {title}", "", "_Not reached in this run._"]
    return ["", f"## {title}", "", *render(data)]


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _training_md(t: dict[str, Any]) -> list[str]:
    runs = t["teacher_runs"]
    mean = t["teacher_mean_metrics"] or {}
    student = t["student_holdout_metrics"] or {}
    symbols = t["symbols"] or []
    dates = t["date_range"] or ["—", "—"]
    sources = t.get("data_sources") or []
    return [
        f"- Data source: {t.get('data_source') or '—'} (stored bars from: "
        f"{', '.join(sources) or '—'})",
        f"- Symbols ({len(symbols)}): {', '.join(symbols)}",
        f"- Dates: {dates[0]} to {dates[1]}",
        f"- Teacher windows: {runs['total']} total, {runs['completed']} completed, "
        f"{runs['skipped']} skipped, {runs['failed']} failed, {runs['missing']} missing",
        f"- Teachers (completed, mean): precision {_fmt(mean.get('precision_macro'))}, recall "
        f"{_fmt(mean.get('recall_macro'))}, F1 {_fmt(mean.get('f1_macro'))}",
        f"- Student samples: {_samples_md(t['student_samples'])}",
        f"- Student holdout: accuracy {_fmt(student.get('accuracy'))}, F1 "
        f"{_fmt(student.get('f1_macro'))}",
        *_search_md(t.get("hyperparameter_search")),
        *_reward_loop_md(t.get("reward_loop")),
    ]


def _search_md(search: dict[str, Any] | None) -> list[str]:
    if not search:
        return ["- Hyperparameter search: none (the configured student)"]
    chosen, inner = search["chosen"], search["inner_validation"]
    space = "; ".join(
        f"{name} ({', '.join(map(str, values))})" for name, values in search["space"].items()
    )
    params = ", ".join(f"{name} {value}" for name, value in chosen["params"].items())
    return [
        f"- Hyperparameter search: {search['trials']} trial(s) over {space}; each counts in the "
        "DSR's N",
        f"  - chosen: trial {chosen['trial']} ({params}); {search['criterion']}: "
        f"{_fmt(chosen['score'])} over {chosen['days']} day(s), "
        f"{_fmt(search['baseline_score'])} for trial 0 (the configured student)",
        f"  - inner validation {inner['validation'][0]} to {inner['validation'][1]}, trained on "
        f"{inner['train'][0]} to {inner['train'][1]}; every label ends by "
        f"{inner['last_label_end']}, before the out-of-sample period from "
        f"{inner['out_of_sample_from']}",
    ]


def _reward_loop_md(r: dict[str, Any] | None) -> list[str]:
    """Where the reward weights came from and how often their calls won, as recorded."""
    if not r or not r.get("enabled"):
        return ["- Reward loop: off"]
    history = r.get("history") or {}
    blocks = (r.get("cross_fit") or {}).get("blocks") or []
    earlier = [e for e in history.get("retrains", []) if e.get("age")]
    lines = [
        f"- Reward loop: on; this retrain's rewards from out-of-fold calls over {len(blocks)} "
        f"purged time blocks, with {len(earlier)} earlier model(s)' live rewards on "
        f"{history.get('rows_with_live_rewards', 0)} training row(s), decayed by γ = "
        f"{history.get('decay', '—')} per retrain over the last "
        f"{history.get('retrain_window', '—')} retrains"
    ]
    rates = {k: (r.get(k) or {}).get("win_rate") for k in
             ("train_rewards", "in_sample_train_rewards", "test_rewards")}  # fmt: skip
    lines.append(
        f"- Reward win rate (directional calls): training rows out of fold "
        f"{_fmt(rates['train_rewards'])} (used), in sample {_fmt(rates['in_sample_train_rewards'])}"
        f" (not used), held out {_fmt(rates['test_rewards'])}"
    )
    return lines


def _samples_md(counts: dict[str, Any] | None) -> str:
    if not counts:
        return "—"
    return (
        f"{counts.get('total')} in all: {counts.get('train')} training, {counts.get('test')} "
        f"held out, {counts.get('purged_or_embargoed')} purged or embargoed between them"
    )


def _validation_md(v: dict[str, Any]) -> list[str]:
    oos = v["out_of_sample"]
    lines = [
        f"- Out of sample: {oos['sessions']} sessions, {oos['start']} to {oos['end']}, "
        f"{oos['folds']} walk-forward folds, {oos['samples']} predictions",
        f"- Student accuracy {_fmt(v['student']['accuracy'])} (F1 "
        f"{_fmt(v['student']['f1_macro'])}); baselines: "
        + ", ".join(f"{k.replace('_', ' ')} {_fmt(a)}" for k, a in v["baselines"].items()),
        "",
        "| strategy | total return | Sharpe | Sortino | max drawdown |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    rows = {**{f"student {k}": s for k, s in v["backtest"].items()}, **v["baselines_backtest"]}
    for name, s in rows.items():
        lines.append(
            f"| {name.replace('_', ' ')} | {_fmt(s['total_return'])} | {_fmt(s['sharpe'])} | "
            f"{_fmt(s['sortino'])} | {_fmt(s['max_drawdown'])} |"
        )
    return lines


def _tests_md(t: dict[str, Any]) -> list[str]:
    lines = [f"- Gated strategy: {t['strategy']} against the market, {t['sessions']} sessions"]
    for name, test in (t.get("skill") or {}).items():
        if test["mean"] is None:
            lines.append(
                f"- {SKILL_MEASURES[name]}: not measurable, no day has {MIN_SYMBOLS} symbols"
            )
            continue
        lines.append(
            f"- {SKILL_MEASURES[name]}: mean {_fmt(test['mean'])} per day, one-sided p = "
            f"{_fmt(test['p_value'])} ({test['batches']} non-overlapping batches)"
        )
    lines.append(
        f"- DSR {_fmt(t['dsr'])} of the active return (annualised Sharpe "
        f"{_fmt(t.get('active_sharpe'))}), N = {t['dsr_trials']}: {t.get('dsr_selection')}"
    )
    champion = t.get("champion")
    if champion:
        lines.append(
            f"- vs champion {champion['champion']}: rank IC {_fmt(champion['candidate_rank_ic'])}"
            f" vs {_fmt(champion['champion_rank_ic'])} on {champion['shared_sessions']} shared "
            f"sessions, one-sided p = {_fmt(champion['p_value'])}"
        )
    lag = (t.get("books") or {}).get("execution_lag")
    if lag:
        lines.append(
            f"- Trading one session late: active Sharpe {_fmt(lag['active_sharpe_annualized'])}"
            f" vs {_fmt(lag['on_time']['active_sharpe_annualized'])} on time"
        )
    lines.append("- Diagnostics (not gated):")
    ab = t.get("reward_ab_test")
    if ab:
        lines.append(f"  - Reward loop A/B (weighted vs unweighted student): {ab['verdict']}")
    for name, test in t["paired_accuracy_tests"].items():
        lines.append(
            f"  - hit rate vs {name.replace('_', ' ')}: {_fmt(test['student_accuracy'])} vs "
            f"{_fmt(test['baseline_accuracy'])}, one-sided p = {_fmt(test['p_value'])}"
        )
    ci = t["sharpe_ci"]
    nifty = t["vs_nifty50"]
    lines += [
        f"  - Sharpe {_fmt(ci['estimate'])} (95% CI {_fmt(ci['lower'])} to {_fmt(ci['upper'])})",
        f"  - vs NIFTY 50: alpha {_fmt(nifty.get('alpha'))}, beta {_fmt(nifty.get('beta'))}, "
        f"information ratio {_fmt(nifty.get('information_ratio'))} per session",
        f"  - PSR {_fmt(t['psr'])}; rule optimizer's PBO over its own trials "
        f"{_fmt(t.get('optimizer_pbo'))}",
    ]
    return lines


def _stress_md(s: dict[str, Any]) -> list[str]:
    if not s["ran"]:
        return [f"- {s['note']}"]
    lines = [
        f"- Resilience {_fmt(s['overall_score'])} (passed: {s['passed']}), "
        f"{s['evaluated']} window(s) evaluated, {s['skipped']} skipped"
    ]
    for w in s["windows"]:
        detail = w["reason"] if w["status"] == "skipped" else (
            f"score {_fmt(w['score'])}, failure mode {w['failure_mode']}"
        )  # fmt: skip
        lines.append(f"- {w['name']}: {w['status']} — {detail}")
    return lines


def _artifacts_md(a: dict[str, Any]) -> list[str]:
    code = a["code"]
    return [
        f"- Candidate: `{a['candidate_dir']}`",
        f"- Audit: `{a['audit_dir']}` (manifest `{a['manifest']}`, {a['files']} files hashed)",
        f"- Code: commit {code.get('commit')}, uncommitted changes: {code.get('dirty')}",
        f"- Input data snapshot SHA-256: {a['data_snapshot_sha256']}",
        *(
            f"- {name}: `{entry['path']}` (SHA-256 {entry['sha256']})"
            for name, entry in a.get("input_files", {}).items()
            if entry
        ),
    ]
