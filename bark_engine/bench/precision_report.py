"""The precision block of the benchmark: ours in other precisions (`--precisions`)
beside float32 ours, their logits' distance from float32's, and the precision
issue's targets (what `auto` runs against the port, int8 against bf16 end to
end and in the coarse prefills, int8's audio rate).
"""

from __future__ import annotations

from .cells import fmt, ratio
from .work import STAGES

# The precision issue's targets, each checked where the run measured what it needs:
TARGET_AUTO_VS_PORT = 3.3  # `auto` (what it picks here) end to end against the port
TARGET_INT8_VS_BF16 = 1.35  # int8 end to end against bf16
TARGET_INT8_PREFILL_VS_BF16 = 1.8  # int8's coarse prefills against bf16's
TARGET_INT8_AUDIO = 0.28  # int8 audio seconds per wall second, one take


def precision_targets(results: dict, out: dict, targets: dict) -> None:
    """int8 against bf16 (end to end, coarse prefills), int8's audio rate, and what
    `auto` picks against the port, when those precisions ran."""
    engines = out["engines"]
    bf16, int8 = engines.get("ours-bfloat16"), engines.get("ours-int8")
    checks = out["precision_checks"] = {}
    auto = results.get("auto_dtype")  # what `auto` runs on this device
    vs_port = (out.get("ratios", {}).get("end_to_end") if auto == results.get("dtype")
               else engines.get(f"ours-{auto}", {}).get("vs_port"))
    if vs_port is not None:
        checks["auto_vs_port"] = vs_port
        targets["auto_vs_port"] = vs_port >= TARGET_AUTO_VS_PORT
    if int8 and "audio_per_s" in int8:
        checks["int8_audio"] = int8["audio_per_s"]
        targets["int8_audio"] = int8["audio_per_s"] >= TARGET_INT8_AUDIO
    if int8 and bf16 and "audio_per_s" in int8 and "audio_per_s" in bf16:
        checks["int8_vs_bf16"] = int8["audio_per_s"] / bf16["audio_per_s"]
        targets["int8_vs_bf16"] = checks["int8_vs_bf16"] >= TARGET_INT8_VS_BF16
    prefills = [e.get("parts", {}).get("coarse_prefills") for e in (int8, bf16) if e]
    if len(prefills) == 2 and all(prefills):
        checks["int8_prefill_vs_bf16"] = prefills[1] / prefills[0]
        targets["int8_prefill_vs_bf16"] = (checks["int8_prefill_vs_bf16"]
                                           >= TARGET_INT8_PREFILL_VS_BF16)


def precision_lines(results: dict, summary: dict) -> list[str]:
    """Ours in other precisions (`--precisions`) beside float32 ours, and their logits'
    distance from float32's per stage."""
    engines, units = summary["engines"], results["work"]["units"]
    others = [n for n in engines if n.startswith("ours-")]
    if not others:
        return []
    base = results["dtype"]
    lines = ["", f"precision ours in each precision, the same work interleaved (ratios against "
             f"ours in {base}, and end to end against the port):"]
    head = (f"          {'':<10}" + "".join(f"{s + ' ' + units[s][1] + '/s':>18}" for s in STAGES
                                         if s in results["stages"])
            + f"{'audio s/s':>11}{'vs ' + base:>12}{'vs port':>9}{'weights MB':>12}{'RSS MB':>8}")
    lines.append(head)
    for name in ["ours", *others]:
        eng = engines[name]
        vs = eng.get("vs_ours", {})
        row = f"          {name.removeprefix('ours-') if name != 'ours' else base:<10}"
        for s in STAGES:
            if s in results["stages"]:
                rate = fmt(eng["rates"].get(s), 1)
                row += f"{rate + (' (' + ratio(vs[s]) + ')' if s in vs else ''):>18}"
        vs_port = eng.get("vs_port", summary.get("ratios", {}).get("end_to_end")
                          if name == "ours" else None)
        row += (f"{fmt(eng.get('audio_per_s'), 3):>11}{ratio(vs.get('end_to_end')):>12}"
                f"{ratio(vs_port):>9}{fmt(eng.get('weight_mb'), 0):>12}"
                f"{fmt(eng.get('peak_rss_mb'), 0):>8}")
        lines.append(row)
    prefills = {n: engines[n].get("parts", {}).get("coarse_prefills") for n in ["ours", *others]}
    if all(prefills.values()):
        base_s = prefills["ours"]
        lines.append("prefills  the coarse stage's window prefills alone, s: " + " · ".join(
            f"{base if n == 'ours' else n.removeprefix('ours-')} {t:.2f}"
            + ("" if n == "ours" else f" ({ratio(base_s / t)})") for n, t in prefills.items()))
    lines += _precision_check_lines(summary)
    accuracy = results.get("accuracy")
    if accuracy:
        lines.append("accuracy  logits against float32's on the same context (RANDOM weights: "
                     "how far the arithmetic moves them, not how it sounds):")
        lines.append(f"          {'':<10}" + "".join(
            f"{s:>27}" for s in ("semantic", "coarse", "fine")))
        lines.append(f"          {'':<10}" + "   rel err   KL T=0.7  top-1" * 3)
        for name, stages in accuracy.items():
            row = f"          {name:<10}"
            for s in ("semantic", "coarse", "fine"):
                a = stages[s]
                row += f"{a['rel_err']:>10.2e}{a['kl']:>10.1e}{a['top1']:>7.1%}"
            lines.append(row)
    return lines


def _precision_check_lines(summary: dict) -> list[str]:
    """The precision issue's targets, where the run measured them."""
    checks, targets = summary.get("precision_checks", {}), summary.get("targets", {})
    words = {
        "auto_vs_port": f"auto end to end ≥ {TARGET_AUTO_VS_PORT}x port: {{:.2f}}x",
        "int8_vs_bf16": f"int8 end to end ≥ {TARGET_INT8_VS_BF16}x bf16: {{:.2f}}x",
        "int8_prefill_vs_bf16": f"int8 coarse prefills ≥ {TARGET_INT8_PREFILL_VS_BF16}x bf16: "
                                "{:.2f}x",
        "int8_audio": f"int8 ≥ {TARGET_INT8_AUDIO} audio s/s: {{:.3f}}",
    }
    done = [words[k].format(checks[k]) + (" PASS" if targets[k] else " MISS")
            for k in words if k in checks]
    return ["targets   " + ";\n          ".join(done)] if done else []
