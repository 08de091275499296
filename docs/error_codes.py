"""Writes docs/errors.md: every diagnostic code specc reports, with its meaning and, where the golden diagnostics
corpus (tests/diagnostics, and tests/diagnostics/cli for command lines) has a case for it, what specc prints for
that case, taken from the case's `.expected` file. The examples therefore cannot drift: tests/test_error_docs.py
fails when docs/errors.md differs from what this script writes, or when the code uses a code this table lacks.

    .venv/bin/python docs/error_codes.py
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path("tests/diagnostics")
OUTPUT = ROOT / "docs" / "errors.md"

# (code, what it means, the corpus case that shows it, or where it is reported when no case can show it)
CODES: list[tuple[str, str, str]] = [
    ("E001", "a file cannot be read: missing, not a regular file, too large, or not UTF-8 text", "not_utf8.dann"),
    ("E002", "an output file already exists (without --force)", "cli/output_exists.args"),
    ("E003", "`specc fmt` was given a JSON file", "cli/fmt_json.args"),
    ("E004", "an output file cannot be written: a missing or read-only folder, a folder in its place, another output "
             "or an input of the same command, an unknown data or picture format, Graphviz's dot failing",
     "cli/output_folder_missing.args"),
    ("E005", "an optional package that is not installed: matplotlib for --plot and for a picture without Graphviz, "
             "Graphviz's dot for --renderer dot, jax for --mode jax, Pillow for an image folder as data, Ray Tune for "
             "specc sweep",
     "reported by the command line, and by spec.compile(\"JAX\") without jax"),
    ("E006", "the JAX mode cannot compile the model: an operation without a JAX implementation",
     "reported by the command line and by spec.compile(\"JAX\"); no layer of specc's vocabularies has one"),
    ("E007", "the Theano target cannot emit the model: a building block without a Theano form",
     "reported by `specc compile --emit theano`; every construct of specc's vocabularies has one (its float32 "
     "rational tanh is left out for Theano)"),
    ("E100", "unexpected text: a syntax error", "stray_character.dann"),
    ("E101", "a statement with a known shape is incomplete", "missing_activation.dann"),
    ("E102", "a bracket is never closed", "unclosed_call.dann"),
    ("E105", "a statement that may appear once is given twice", "duplicate_seed.dann"),
    ("E106", "an unknown word where the language has a fixed set", "unknown_precision.dann"),
    ("E107", "arguments in the wrong form, e.g. positional after keyword", "positional_after_keyword.dann"),
    ("E108", "nesting beyond the limit of 100 levels", "nested_too_deep.dann"),
    ("E109", "a number literal too large for a float", "number_too_large.dann"),
    ("E120", "JSON that is not a model: invalid, or against the schema", "json_unknown_key.json"),
    ("E201", "an unknown name", "unknown_name.dann"),
    ("E202", "a name defined twice", "duplicate_definition.dann"),
    ("E203", "a missing statement: no loss, no optimize", "missing_optimize.dann"),
    ("E204", "a name or value of the wrong kind", "input_as_number.dann"),
    ("E205", "a definition that depends on itself or on a later one", "cyclic_lets.dann"),
    ("E206", "an unknown function, layer, activation, dtype or initialiser", "unknown_activation.dann"),
    ("E207", "wrong arguments: too many, unknown, missing or given twice", "reverse_unknown_keyword.dann"),
    ("E301", "shapes that do not fit", "stack_input_widths.dann"),
    ("E302", "a class label or bound that does not fit the predictions", "softmax_width_vs_bound.dann"),
    ("E401", "the wrong dtype or activation for an operation", "float_labels_crossentropy.dann"),
    ("E501", "a gradient reversal that cannot work", "reverse_twice.dann"),
    ("E601", "a value out of range: zero or negative sizes, rates, non-finite numbers", "zero_width.dann"),
    ("E602", "an override names no parameter of the model (--set, or a keyword of load)",
     "cli/override_unknown_parameter.args"),
    ("E603", "an override value that is not a number, true/false or a list, or is nested too deep",
     "cli/override_unreadable.args"),
    ("E604", "parameters and optimiser state that would need more memory than allowed (--max-parameter-memory)",
     "parameters_too_large.dann"),
    ("E605", "a network deeper than 250 layers", "network_too_deep.dann"),
    ("E606", "an optimize statement (a training phase) that cannot train: unnamed beside others, updating a frozen "
             "stack or one its objective does not depend on; or a stack that some loss trains but no phase updates",
     "phases_update_unrelated.dann"),
    ("E607", "stages of training that cannot run: a stage without `epochs` before the last, a phase no stage runs, "
             "a phase run twice in a stage, a copy between stacks of different layers",
     "stages_open_before_last.dann"),
    ("E801", "a data file that cannot be read, or data that does not fit the model", "cli/data_unknown_format.args"),
    ("E802", "training options that do not fit the model", "cli/label_head_unknown.args"),
    ("E803", "a checkpoint that cannot be read", "cli/checkpoint_unreadable.args"),
    ("E804", "a checkpoint written for another spec", "cli/checkpoint_of_another_spec.args"),
    ("E805", "training diverged", "cli/training_diverges.args"),
    ("E806", "a run to resume that differs from the one checkpointed", "cli/resume_with_other_batches.args"),
    ("E807", "another run is writing the same checkpoint",
     "reported by `specc train` and `fit` while another run holds the checkpoint (tests/cli/test_outputs.py)"),
    ("E808", "`specc eval` of a checkpoint whose model's outputs are not finite (a diverged model)",
     "reported by `specc eval` (tests/cli/test_outputs.py)"),
    ("E809", "an unknown validator (`--validator`, `validators=`)", "cli/validator_unknown.args"),
    ("E810", "a validator the data given cannot feed: held-out labelled source rows (--val, --val-fraction), target "
             "rows, target labels for the oracle; reverse validation outside training",
     "cli/validator_needs_validation.args"),
    ("E820", "a sweep that cannot be run as given: a sweep file that is not JSON or is against its schema, a --grid "
             "that cannot be read, an unknown selector, options that do not go together",
     "cli/sweep_file_unknown_key.args"),
    ("E821", "a sweep folder to resume whose plan (sweep.json) cannot be read", "cli/sweep_resume_not_a_sweep.args"),
    ("E901", "an included file that cannot be read: missing, not a regular file, too large, or too deep a chain",
     "include_missing.dann"),
    ("E902", "files that include each other", "include_cycle.dann"),
    ("E903", "an include outside the including file's folder (--allow-outside-includes)", "include_outside.dann"),
    ("E904", "a template argument hidden by the template's loop variable", "template_loop_capture.dann"),
    ("W701", "a stack that is never used", "unused_stack.dann"),
    ("W702", "an input or value that is never used", "unused_input.dann"),
    ("W703", "a gradient reversal that reaches no loss", "reversal_reaches_no_loss.dann"),
    ("W704", "a loss that is not part of the objective", "loss_not_in_objective.dann"),
    ("W705", "a loss that reads a reversed value directly", "loss_reads_reversed.dann"),
    ("W706", "a stack that no loss depends on", "stack_never_trained.dann"),
    ("W707", "a domain or `adversarial` loss whose gradient reaches the features the label loss trains without a "
             "reversal",
     "reversal_domain_not_reversed.dann"),
    ("W708", "a gradient reversal on the path of the label loss", "reversal_on_label_path.dann"),
    ("W901", "a template that is never used", "template_unused.dann"),
    ("W902", "a template parameter named like a model parameter", "template_shadows_parameter.dann"),
]

HEADER = """\
# Error codes

Every message specc prints has a code: `E` for errors, which stop a model from compiling, `W` for warnings, which
do not. By range: E0xx files and the command line, E1xx syntax and the JSON door, E2xx names, E3xx shapes, E4xx
dtypes, E5xx gradient reversal, E6xx values and limits, E8xx data and training, E9xx includes and templates; W7xx
warnings about the model, W9xx about templates.

This file is written by `docs/error_codes.py` from the golden diagnostics corpus (`tests/diagnostics/`): each
example is what specc prints for that case today. Do not edit it by hand; run `.venv/bin/python docs/error_codes.py`.
"""


def example(case: str, code: str) -> str:
    """The first diagnostic with `code` in what the corpus case reports (its `.expected` file)."""
    expected = (ROOT / CORPUS / case).with_suffix(".expected").read_text(encoding="utf-8")
    blocks: list[list[str]] = []
    for line in expected.splitlines():
        if line.startswith("  ") and blocks:
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return "\n".join(next(block for block in blocks if f"[{code}]" in block[0]))


def render() -> str:
    out = [HEADER, "| code | meaning |", "|---|---|"]
    out += [f"| [{code}](#{code.lower()}) | {meaning} |" for code, meaning, _ in CODES]
    for code, meaning, case in CODES:
        out += ["", f"## {code}", "", f"{meaning[0].upper()}{meaning[1:]}."]
        if case.endswith(".args"):  # command lines: the setup, then the one that fails, and what it prints
            commands = [f"$ specc {line}" for line in (ROOT / CORPUS / case).read_text(encoding="utf-8").splitlines()]
            out += ["", f"Example: [`{CORPUS / case}`](../{CORPUS / case}), with `{{tmp}}` a fresh folder", "",
                    "```", *commands, example(case, code), "```"]
        elif (ROOT / CORPUS / case).is_file():
            out += ["", f"Example: [`{CORPUS / case}`](../{CORPUS / case})", "", "```", example(case, code), "```"]
        else:
            out += ["", f"No case in the corpus: {case}."]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
