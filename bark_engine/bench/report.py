"""Numbers derived from the raw measurements, and the plain-text table.

Every rate row compares ours with the port as ours/port (> 1: ours is
faster); load and memory rows show ours/port too (< 1: ours is smaller).
With `--baseline`, an "ours vs before" block compares with another checkout's
engine on the same work; `--takes` and `--script` add the batching blocks.
"""

from __future__ import annotations

from .cells import fmt, ratio
from .precision_report import precision_lines, precision_targets
from .work import STAGES

TARGET_SPEEDUP = 2.8  # end to end at B = 1 in float32, ours vs transformers' port
TARGET_BOUND_SHARE = 0.70  # semantic tok/s as a share of the bandwidth bound
TARGET_TAKES_B4 = 1.6  # per-take throughput at B = 4 against B = 1 (float32)
TARGET_SEMANTIC_STEP_B4 = 1.15  # a semantic step at B = 4 against B = 1, at most
ENGINES = ("ours", "port", "before")
ROW_LABELS = {
    "semantic": "semantic",
    "coarse": "coarse",
    "fine": "fine",
    "decode": "decode",
}


def best_seconds(engine: dict, key: str = "runs") -> dict[str, float]:
    """Per stage, the fastest of the repeated runs (wall time, or `cpu_runs`)."""
    stages = engine[key][0].keys()
    return {s: min(run[s] for run in engine[key]) for s in stages}


def summarize(results: dict) -> dict:
    """Add rates, end-to-end figures, ratios, the bound share and the target checks."""
    work = results["work"]
    units = work["units"]
    out: dict = {"stages": {}, "engines": {}}
    for name, raw in results["engines"].items():  # ours, port, before, ours-<precision>
        secs = best_seconds(raw)
        eng = {
            "load_s": raw["load_s"],
            "first_use_s": raw.get("first_use_s"),
            "peak_rss_mb": raw["peak_rss_mb"],
            "weight_mb": raw.get("weight_mb"),
            "gpu_peak_mb": raw.get("gpu_peak_mb"),
            "seconds": secs,
            "cpu_seconds": best_seconds(raw, "cpu_runs") if raw.get("cpu_runs") else {},
            "rates": {s: units[s][0] / t for s, t in secs.items()},
        }
        part_runs = [r for r in raw.get("part_runs") or [] if r]
        if part_runs:  # seconds of a stage's parts (coarse prefills, steps), best of rounds
            eng["parts"] = {k: min(r[k] for r in part_runs) for k in part_runs[0]}
        if all(s in secs for s in STAGES):
            total = sum(secs[s] for s in STAGES)
            eng["total_s"] = total
            if eng["cpu_seconds"]:
                eng["total_cpu_s"] = sum(eng["cpu_seconds"][s] for s in STAGES)
            eng["audio_per_s"] = work["audio_seconds"] / total
            eng["takes_per_min"] = {1: 60.0 / total}
        out["engines"][name] = eng
    if "ours" in out["engines"] and "before" in out["engines"]:
        ours, before = out["engines"]["ours"], out["engines"]["before"]
        out["vs_before"] = {s: ours["rates"][s] / before["rates"][s] for s in ours["rates"]
                            if s in before["rates"]}
        if "audio_per_s" in ours and "audio_per_s" in before:
            out["vs_before"]["end_to_end"] = ours["audio_per_s"] / before["audio_per_s"]
    if "ours" in out["engines"] and "port" in out["engines"]:
        ours, port = out["engines"]["ours"], out["engines"]["port"]
        out["ratios"] = {s: ours["rates"][s] / port["rates"][s] for s in ours["rates"]}
        if "audio_per_s" in ours:
            out["ratios"]["end_to_end"] = ours["audio_per_s"] / port["audio_per_s"]
        out["ratios"]["load"] = ours["load_s"] / port["load_s"]
        out["ratios"]["peak_rss"] = ours["peak_rss_mb"] / port["peak_rss_mb"]
    for name, eng in out["engines"].items():
        base = out["engines"].get("ours")
        if name.startswith("ours-") and base:  # another precision against float32 ours
            eng["vs_ours"] = {s: eng["rates"][s] / base["rates"][s] for s in eng["rates"]
                              if s in base["rates"]}
            if "audio_per_s" in eng and "audio_per_s" in base:
                eng["vs_ours"]["end_to_end"] = eng["audio_per_s"] / base["audio_per_s"]
            port = out["engines"].get("port")
            if port and "audio_per_s" in eng:
                eng["vs_port"] = eng["audio_per_s"] / port["audio_per_s"]
    bound = results.get("bound")
    if bound:
        out["bound_share"] = {
            name: eng["rates"]["semantic"] / bound["tok_s"]
            for name, eng in out["engines"].items()
            if "semantic" in eng["rates"]
        }
    paired = results.get("paired_bound")
    if bound and paired and paired["pairs"]:
        n_tokens = units["semantic"][0]
        shares = sorted(
            n_tokens / p["seconds"] / (max(p["gbs_before"], p["gbs_after"]) * 1e9)
            * bound["bytes_per_token"]
            for p in paired["pairs"]
        )
        out["paired_share"] = {
            "shares": shares,
            "median": shares[len(shares) // 2] if len(shares) % 2 else
            (shares[len(shares) // 2 - 1] + shares[len(shares) // 2]) / 2,
            "gbs": [g for p in paired["pairs"] for g in (p["gbs_before"], p["gbs_after"])],
        }
    targets = {}
    if "ratios" in out and "end_to_end" in out["ratios"] and results.get("dtype") == "float32":
        targets["end_to_end"] = out["ratios"]["end_to_end"] >= TARGET_SPEEDUP
    rows = {r["batch"]: r for r in (results.get("takes") or {}).get("rows", [])}
    if 1 in rows and 4 in rows:
        out["takes_b4"] = rows[4]["takes_per_minute"] / rows[1]["takes_per_minute"]
        if rows[1].get("semantic_step_ms") and rows[4].get("semantic_step_ms"):
            out["semantic_step_b4"] = rows[4]["semantic_step_ms"] / rows[1]["semantic_step_ms"]
            targets["semantic_step_b4"] = out["semantic_step_b4"] <= TARGET_SEMANTIC_STEP_B4
        if results.get("dtype") == "float32":
            targets["takes_b4"] = out["takes_b4"] >= TARGET_TAKES_B4
    if "paired_share" in out:  # the bound in force while the stage ran
        targets["semantic_bound"] = out["paired_share"]["median"] >= TARGET_BOUND_SHARE
    elif "bound_share" in out and "ours" in out["bound_share"]:
        targets["semantic_bound"] = out["bound_share"]["ours"] >= TARGET_BOUND_SHARE
    precision_targets(results, out, targets)
    out["targets"] = targets
    return out


def _device_label(results: dict) -> str:
    device = results.get("device", "cpu")
    if device == "cpu":
        return "cpu, weights memory-mapped"
    return f"{device} ({results.get('gpu') or 'GPU'})"


def format_table(results: dict, summary: dict) -> str:
    """The benchmark's printed report (plain text, ~100 columns)."""
    m, w, cfg = results["machine"], results["work"], results["config"]
    units = w["units"]
    lines = [
        "bark_engine bench: ours vs transformers' Bark port on RANDOM WEIGHTS (speed only)",
        f"date      {results['date']}",
        f"machine   {m['cpu']} ({m['cpus']} CPUs), threads {results['threads']}, "
        f"torch {m['torch']}, transformers {m['transformers']}, Python {m['python']}",
        *([f"kernels   {m['kernels']}"] if m.get("kernels") else []),
        f"load avg  {m['load_before']} before, {m['load_after']} after (1/5/15 min)",
        f"openmp    {m['omp']} (idle threads' waits, as the children ran)",
        f"model     dims {results['dims']} ({cfg['n_layer']} layers, {cfg['n_head']} heads, "
        f"{cfg['n_embd']} wide), {results['dtype']}, {_device_label(results)}",
        f"work      {w['semantic_tokens']} semantic tokens (early stop off) → "
        f"{w['coarse_tokens']} coarse tokens → fine ({w['coarse_frames']} frames",
        f"          × 6 codebooks) → decode: {w['audio_seconds']:.2f} s of audio; voice "
        f"{w['voice'] or 'none'}; T = {w['text_temp']} / {w['waveform_temp']} / {w['fine_temp']}",
        f"          (sampled); the same stage inputs for both engines; "
        f"best of {results['repeat']} round(s)",
    ]
    loads = [m["load_before"], *(r["load_avg"] for e in results["engines"].values()
                                 for r in e.get("rounds", []))]
    busiest = max(float(x.split("/")[0]) for x in loads if x != "n/a") if loads else 0.0
    if busiest > 0.5 * (m["cpus"] or 1):
        lines.append(
            f"          NOTE: busy machine (1-min load up to {busiest:.1f} on {m['cpus']} CPUs): "
            "numbers low and noisy"
        )
    if m.get("in_process"):
        lines.append("          (engines ran in one process: peak RSS and threads are shared)")
    lines.append("")
    engines = summary["engines"]
    ratios = summary.get("ratios", {})

    def get(name: str, *keys):
        value = engines.get(name)
        for k in keys:
            if value is None:
                return None
            value = value.get(k) if isinstance(value, dict) else None
        return value

    head = (
        f"{'':<20}{'ours s':>9}{'port s':>9}{'ours':>10}{'port':>10}  {'unit':<11}{'ours/port':>9}"
        f"{'ours cpu':>10}{'port cpu':>10}"
    )
    lines += [head, "-" * len(head)]
    for stage in STAGES:
        if stage not in results["stages"]:
            continue
        n, unit = units[stage]
        label = f"{ROW_LABELS[stage]} ({n} {unit})"
        lines.append(
            f"{label:<20}{fmt(get('ours', 'seconds', stage)):>9}"
            f"{fmt(get('port', 'seconds', stage)):>9}"
            f"{fmt(get('ours', 'rates', stage), 1):>10}{fmt(get('port', 'rates', stage), 1):>10}"
            f"  {unit + '/s':<11}{ratio(ratios.get(stage)):>9}"
            f"{fmt(get('ours', 'cpu_seconds', stage)):>10}"
            f"{fmt(get('port', 'cpu_seconds', stage)):>10}"
        )
    if get("ours", "total_s") is not None or get("port", "total_s") is not None:
        lines.append(
            f"{'end to end':<20}{fmt(get('ours', 'total_s')):>9}{fmt(get('port', 'total_s')):>9}"
            f"{fmt(get('ours', 'audio_per_s'), 3):>10}{fmt(get('port', 'audio_per_s'), 3):>10}"
            f"  {'audio s/s':<11}{ratio(ratios.get('end_to_end')):>9}"
            f"{fmt(get('ours', 'total_cpu_s')):>10}{fmt(get('port', 'total_cpu_s')):>10}"
        )
        for b in results["batch_sizes"]:
            ours_t = (get("ours", "takes_per_min") or {}).get(b)
            port_t = (get("port", "takes_per_min") or {}).get(b)
            r = ours_t / port_t if ours_t and port_t else None
            lines.append(
                f"{f'takes/min, B = {b}':<20}{'':>9}{'':>9}{fmt(ours_t, 2):>10}"
                f"{fmt(port_t, 2):>10}  {'takes/min':<11}{ratio(r):>9}"
            )
    lines.append(
        f"{'load (no imports)':<20}{fmt(get('ours', 'load_s')):>9}{fmt(get('port', 'load_s')):>9}"
        f"{'':>10}{'':>10}  {'s':<11}{ratio(ratios.get('load')):>9}"
    )
    lines.append(
        f"{'warm-up (not in e2e)':<20}{fmt(get('ours', 'first_use_s')):>9}"
        f"{fmt(get('port', 'first_use_s')):>9}{'':>10}{'':>10}  {'s':<11}"
    )
    lines.append(
        f"{'peak RSS':<20}{'':>9}{'':>9}{fmt(get('ours', 'peak_rss_mb'), 0):>10}"
        f"{fmt(get('port', 'peak_rss_mb'), 0):>10}  {'MB':<11}{ratio(ratios.get('peak_rss')):>9}"
    )
    if get("ours", "gpu_peak_mb") or get("port", "gpu_peak_mb"):
        lines.append(
            f"{'GPU memory peak':<20}{'':>9}{'':>9}{fmt(get('ours', 'gpu_peak_mb'), 0):>10}"
            f"{fmt(get('port', 'gpu_peak_mb'), 0):>10}  {'MB':<11}"
        )
    lines.append("")
    bw, bound = results.get("bandwidth"), results.get("bound")
    if bw and bound:
        lines.append(
            f"bandwidth {bw['gbs']:.1f} GB/s: best of {bw['repeats']} reads of "
            f"{bw['megabytes']:.0f} MB fp32, threads {bw['threads']} (sum {bw['sum_gbs']:.1f}, mv "
            f"{bw['mv_gbs']:.1f} GB/s)"
        )
        lines.append(
            f"bound     {bound['bytes_per_token'] / 1e6:.1f} MB of weights per semantic token "
            f"(blocks, ln_f, 10,001 head rows) → {bound['tok_s']:.1f} tok/s"
        )
        lines.append(
            f"          (not counted: the KV cache, ~{bound['kv_bytes_per_token'] / 1e6:.0f} MB "
            "per token on average here)"
        )
        shares = summary.get("bound_share", {})
        parts = [
            f"{name} {fmt(get(name, 'rates', 'semantic'), 1)} tok/s = {shares[name]:.0%}"
            for name in ENGINES
            if name in shares
        ]
        if parts:
            lines.append("semantic  " + ", ".join(parts) + " of the bound measured at the start")
        paired = summary.get("paired_share")
        if paired:
            gbs = paired["gbs"]
            shares = ", ".join(f"{x:.0%}" for x in paired["shares"])
            lines.append(
                f"paired    ours {shares} (median {paired['median']:.0%}) of the bound read right "
                "before and after"
            )
            lines.append(
                f"          each run ({min(gbs):.1f}-{max(gbs):.1f} GB/s, the higher of each pair "
                "counts): bandwidth drifts here"
            )
    vs = summary.get("vs_before")
    if vs:
        parts = [f"{s} {vs[s]:.2f}x" for s in (*STAGES, "end_to_end") if s in vs]
        lines.append("vs before ours / the --baseline engine (same work, best of rounds): "
                     + ", ".join(parts).replace("end_to_end", "end to end"))
        before = engines["before"]
        lines.append("          before: " + ", ".join(
            f"{s} {fmt(before['rates'][s], 1)} {units[s][1]}/s" for s in STAGES
            if s in before["rates"]) + (f", end to end {before['total_s']:.1f} s"
                                        if "total_s" in before else ""))
    targets = summary.get("targets", {})
    checks = []
    if "end_to_end" in targets:
        checks.append(
            f"end to end ≥ {TARGET_SPEEDUP}x port: {ratios['end_to_end']:.2f}x "
            f"{'PASS' if targets['end_to_end'] else 'MISS'}"
        )
    if "takes_b4" in targets:
        checks.append(f"per take at B = 4 ≥ {TARGET_TAKES_B4}x B = 1: {summary['takes_b4']:.2f}x "
                      f"{'PASS' if targets['takes_b4'] else 'MISS'}")
    if "semantic_step_b4" in targets:
        checks.append(f"semantic step at B = 4 ≤ {TARGET_SEMANTIC_STEP_B4}x B = 1: "
                      f"{summary['semantic_step_b4']:.2f}x "
                      f"{'PASS' if targets['semantic_step_b4'] else 'MISS'}")
    if "semantic_bound" in targets:
        paired = summary.get("paired_share")
        share, how = (
            (paired["median"], " (paired median)") if paired else (summary["bound_share"]["ours"], "")
        )
        checks.append(
            f"semantic ≥ {TARGET_BOUND_SHARE:.0%} of bound: {share:.0%}{how} "
            f"{'PASS' if targets['semantic_bound'] else 'MISS'}"
        )
    if checks:
        lines.append("targets   " + ";\n          ".join(checks))
    lines += precision_lines(results, summary)
    takes = results.get("takes")
    if takes:
        lines.append("")
        lines.append("takes     ours, B takes of the fixed work above as one batch "
                     "(Engine.generate_takes):")
        lines += ["          " + row for row in takes["table"].splitlines()]
    else:
        lines.append("batching  takes/min at B = 1, 2, 4, 8: run with --takes 1,2,4,8 (ours only)")
    script = results.get("script")
    if script:
        lines.append("")
        lines.append(f"script    ours, a fixed-voice script rendered as `render` does (default "
                     f"batch here: {script['default_batch']}):")
        lines += ["          " + row for row in script["table"].splitlines()]
    lines.append(
        "columns   s: wall seconds; cpu: CPU seconds of all threads (steadier on a busy machine)"
    )
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"
