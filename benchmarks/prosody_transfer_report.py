"""The summaries, goals and Markdown report of benchmarks/prosody_transfer.py (issues 6, 17)."""

from __future__ import annotations

import numpy as np

from reader.transfer import DEFAULT_MODE

SYSTEMS = {"plain TTS": None, "transfer": "codes", "transfer + F0": "codes+f0"}
DEFAULT_SYSTEM = next(name for name, mode in SYSTEMS.items() if mode == DEFAULT_MODE)
GOAL_ACCEPTED = GOAL_REFUSED = 0.95
GOAL_SIMILARITY_MARGIN = 0.05
GOAL_F0_CORRELATION = 0.7
GOAL_NISQA_MARGIN = 0.1
TARGET_REFERENCE_CLIPS = 20  # real training recordings averaged into a speaker reference

METRICS = ("sim_target", "sim_source", "leakage", "f0_corr", "dur_corr", "wer", "nisqa", "refused")


def mean_rows(rows: list[dict]) -> dict:
    return {key: round(float(np.nanmean([r[key] for r in rows])), 4) for key in METRICS if any(key in r for r in rows)} | {"pairs": len(rows)}


def summarise(pairs: list[dict], model_names: list[str]) -> dict:
    """Means per model set and system, over all pairs and per direction (source speaker -> target)."""
    summary: dict = {}
    for name in model_names:
        for system in SYSTEMS:
            rows = [p["systems"][name][system] | {"direction": f"{p['source_speaker']} -> {p['target']}"} for p in pairs if name in p["systems"]]
            entry = mean_rows(rows)
            entry["by_direction"] = {d: mean_rows([r for r in rows if r["direction"] == d]) for d in sorted({r["direction"] for r in rows})}
            summary.setdefault(name, {})[system] = entry
    return summary


def bootstrap_interval(values: np.ndarray, resamples: int = 2000) -> list[float]:
    """95 % bootstrap interval of the mean (pairs resampled with replacement)."""
    means = np.random.default_rng(0).choice(values, (resamples, values.size)).mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def nisqa_minus_plain_tts(pairs: list[dict], system: str) -> dict:
    """The CopyCat system's NISQA-TTS minus plain TTS's, per pair (same text, same target voice): mean and
    bootstrap interval. A clip's score swings by half a point or more with its text, so a margin of 0.1
    between group means of a few dozen pairs is within the noise: the interval says how far."""
    differences = np.array([p["systems"]["copycat"][system]["nisqa"] - p["systems"]["copycat"]["plain TTS"]["nisqa"] for p in pairs])
    return {"mean": round(float(differences.mean()), 4), "ci95": bootstrap_interval(differences)}


def goals(summary: dict, pairs: list[dict]) -> dict:
    """The issue's three goals, for each transfer system of the CopyCat model, the NISQA-TTS one with its
    paired difference; the leakage comparison with the paired difference per sentence and its bootstrap
    interval (the two models hear the same sources), since the leakage figures are small."""
    copycat, result = summary["copycat"], {}
    for system in (name for name, mode in SYSTEMS.items() if mode):
        row = copycat[system]
        result[system] = {
            "sim_target_within_0.05_of_plain_tts": row["sim_target"] >= copycat["plain TTS"]["sim_target"] - GOAL_SIMILARITY_MARGIN,
            "f0_corr_at_least_0.7": row["f0_corr"] >= GOAL_F0_CORRELATION,
            "nisqa_within_0.1_of_plain_tts": row["nisqa"] >= copycat["plain TTS"]["nisqa"] - GOAL_NISQA_MARGIN,
            "nisqa_minus_plain_tts": nisqa_minus_plain_tts(pairs, system),
        }
        if "baseline" in summary:
            differences = np.array([p["systems"]["copycat"][system]["leakage"] - p["systems"]["baseline"][system]["leakage"] for p in pairs])
            result[system]["less_leakage_than_baseline"] = row["leakage"] < summary["baseline"][system]["leakage"]
            result[system]["leakage_minus_baseline"] = {"mean": round(float(differences.mean()), 4), "ci95": bootstrap_interval(differences)}
    return result


def markdown(result: dict) -> str:
    lines = [
        (
            f"Sources: {result['sources']} held-out test clips ({', '.join(f'{k}: {v}' for k, v in result['sources_per_speaker'].items())}); "
            f"targets: every other voice; speaker references: mean resemblyzer embedding of {TARGET_REFERENCE_CLIPS} training clips per speaker."
        ),
        "",
        "| model | system | pairs | sim target | sim source | leakage | F0 corr | dur corr | WER | NISQA-TTS | refused |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    recordings = result["recordings"]
    lines.append(
        f"| (source recordings) | real speech | {recordings['pairs']} | {recordings['sim_target']} | {recordings['sim_source']} | | 1 | 1 | {recordings['wer']} | {recordings['nisqa']} | |"
    )
    for name, systems in result["summary"].items():
        for system, r in systems.items():
            lines.append(
                f"| {name} | {system} | {r['pairs']} | {r['sim_target']} | {r['sim_source']} | {r['leakage']} | {r['f0_corr']} | {r['dur_corr']} | {r['wer']} | {r['nisqa']} | {r['refused']} |"
            )
    lines += ["", "By direction (transfer, codes only):", "", "| model | direction | sim target | sim source | leakage | F0 corr | WER |", "|---|---|---|---|---|---|---|"]
    for name, systems in result["summary"].items():
        for direction, r in systems["transfer"]["by_direction"].items():
            lines.append(f"| {name} | {direction} | {r['sim_target']} | {r['sim_source']} | {r['leakage']} | {r['f0_corr']} | {r['wer']} |")
    lines += ["", f"Nearest known voice picked for the source (as for an unseen speaker): {result['nearest_voice_correct']} correct.", ""]
    if "synthetic_sources" in result:
        synthetic = result["synthetic_sources"]
        r = synthetic["recordings"]
        lines += [
            "",
            (
                f"Sources the model never heard, of a voice it does not know: {synthetic['sources']} readings by {synthetic['voice']}, "
                f"transferred with force (mean alignment cost {synthetic['alignment_cost_mean']}; {synthetic['summary']['copycat']['transfer']['refused']:.0%} "
                f"of them refused by the transcript check ({synthetic['transcript_check']}, calibrated on human speech) without --force); "
                "sim source is to the mean of espeak-ng readings of training texts."
            ),
            "",
            "| system | pairs | sim target | sim source | leakage | F0 corr | dur corr | WER | NISQA-TTS |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| (espeak-ng recordings) | {r['pairs']} | {r['sim_target']} | {r['sim_source']} | | 1 | 1 | {r['wer']} | {r['nisqa']} |",
            *[
                f"| {system} | {r['pairs']} | {r['sim_target']} | {r['sim_source']} | {r['leakage']} | {r['f0_corr']} | {r['dur_corr']} | {r['wer']} | {r['nisqa']} |"
                for system, r in synthetic["summary"]["copycat"].items()
            ],
            "",
        ]
    for system, checks in result["goals"].items():
        verdicts = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items() if isinstance(v, bool))
        lines.append(f"Goals (issues 6 and 17), copycat {system}: {verdicts}{paired_differences(checks)}")
    if "unseen_sources" in result:
        lines += unseen_markdown(result["unseen_sources"])
    return "\n".join(lines) + "\n"


def unseen_summary(pairs: list[dict], genders: dict[str, str], model_names: list[str]) -> dict:
    """Per source gender (male, female) and target voice: acceptance of the correct transcripts, refusal
    of wrong ones, and each model set's systems (means over pairs)."""
    groups = {}
    for gender, label in (("m", "male"), ("f", "female")):
        for target in sorted({p["target"] for p in pairs}):
            chosen = [p for p in pairs if genders[p["source_speaker"]] == gender and p["target"] == target]
            for pair in chosen:
                pair["group"] = f"{label} -> {target}"
            if chosen:
                groups[f"{label} -> {target}"] = {
                    "pairs": len(chosen),
                    "speakers": len({p["source_speaker"] for p in chosen}),
                    "accepted": round(1 - float(np.mean([p["systems"][model_names[0]]["transfer"]["refused"] for p in chosen])), 4),
                    "wrong_refused": round(float(np.mean([p["wrong_refused"] for p in chosen])), 4),
                    "systems": summarise(chosen, model_names),
                }
    return groups


def paired_differences(checks: dict) -> str:
    """The goals' paired differences (mean and 95 % interval), for the markdown."""
    labels = {"nisqa_minus_plain_tts": "NISQA-TTS minus plain TTS's", "leakage_minus_baseline": "leakage minus baseline's"}
    parts = [f"{label} per sentence: {checks[key]['mean']}, 95 % interval {checks[key]['ci95']}" for key, label in labels.items() if key in checks]
    return f" ({'; '.join(parts)})" if parts else ""


def unseen_goals(groups: dict, pairs: list[dict]) -> dict:
    """Issue 17's goals, per group, for the CopyCat model's default mode (transfer + F0); the NISQA-TTS
    one also over all unseen pairs together (every group's interval is wide)."""
    result = {}
    for name, group in groups.items():
        systems = group["systems"]["copycat"]
        chosen = [p for p in pairs if p["group"] == name]
        result[name] = {
            f"accepted_at_least_{GOAL_ACCEPTED}": group["accepted"] >= GOAL_ACCEPTED,
            f"wrong_refused_at_least_{GOAL_REFUSED}": group["wrong_refused"] >= GOAL_REFUSED,
            "f0_corr_at_least_0.7": systems[DEFAULT_SYSTEM]["f0_corr"] >= GOAL_F0_CORRELATION,
            "sim_target_within_0.05_of_plain_tts": systems[DEFAULT_SYSTEM]["sim_target"] >= systems["plain TTS"]["sim_target"] - GOAL_SIMILARITY_MARGIN,
            "nisqa_within_0.1_of_plain_tts": systems[DEFAULT_SYSTEM]["nisqa"] >= systems["plain TTS"]["nisqa"] - GOAL_NISQA_MARGIN,
            "nisqa_minus_plain_tts": nisqa_minus_plain_tts(chosen, DEFAULT_SYSTEM),
        }
    result["all unseen pairs"] = {"nisqa_minus_plain_tts": nisqa_minus_plain_tts(pairs, DEFAULT_SYSTEM)}
    return result


def unseen_markdown(unseen: dict) -> list[str]:
    lines = [
        "",
        (
            f"Real speakers no model has heard: {unseen['sources']} speechocean762 test clips ({unseen['speakers']} speakers; Zhang et al. 2021), "
            f"source voice the nearest known one; accepted: correct transcripts let through without --force ({unseen['transcript_check']}); "
            "wrong refused: sources refused when given another clip's transcript."
        ),
        "",
        "| source -> target | model | system | pairs | accepted | wrong refused | sim target | sim source | leakage | F0 corr | dur corr | WER | NISQA-TTS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for group_name, group in unseen["groups"].items():
        for name, systems in group["systems"].items():
            for system, r in systems.items():
                lines.append(
                    f"| {group_name} | {name} | {system} | {r['pairs']} | {group['accepted']} | {group['wrong_refused']} | {r['sim_target']} | "
                    f"{r['sim_source']} | {r['leakage']} | {r['f0_corr']} | {r['dur_corr']} | {r['wer']} | {r['nisqa']} |"
                )
    lines.append("")
    for group_name, checks in unseen["goals"].items():
        verdicts = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items() if isinstance(v, bool))
        lines.append(" ".join(filter(None, [f"Goals (issue 17), {group_name}, copycat {DEFAULT_SYSTEM}:", verdicts])) + paired_differences(checks))
    return lines
