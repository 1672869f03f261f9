import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from conftest import expected_label
from tether import (
    BundleClassMismatchError,
    BundleError,
    IncompleteBundleError,
    ModelSpec,
    TetherError,
    UntrustedCustomCodeError,
    VerificationError,
    bundle_spec,
    load,
    load_bundle,
    save,
    verify,
)
from tether.bundles import atomic
from tether.bundles.probes import probe_outputs
from tether.bundles.save import recover
from tether.cli.main import cli
from tether.models.inspection import inspect, sha256_file
from tether.models.manifest import MANIFEST_NAME, read_manifest

#: tiny fixture -> (model_class, trust_remote_code, class the bundle records)
MODELS = {
    "bert": ("AutoModel", False, "BertModel"),
    "bert-mlm": ("AutoModelForMaskedLM", False, "BertForMaskedLM"),
    "roberta": ("AutoModel", False, "RobertaModel"),
    "xlmr-mlm": ("AutoModelForMaskedLM", False, "XLMRobertaForMaskedLM"),
    "distilbert-cls": (
        "AutoModelForSequenceClassification",
        False,
        "DistilBertForSequenceClassification",
    ),
    "gpt2": ("AutoModelForCausalLM", False, "GPT2LMHeadModel"),
    "custom": ("AutoModel", True, "TinyCustomModel"),
}


def _spec(tiny, name):
    model_class, trust, _ = MODELS[name]
    return ModelSpec(str(tiny[name]), model_class=model_class, trust_remote_code=trust)


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory):
    """name -> a bundle saved once per module; tests that tamper work on a copy."""
    root = tmp_path_factory.mktemp("bundles")
    return {name: save(_spec(tiny, name), root / name) for name in ("bert", "custom")}


@pytest.fixture
def copy_of(saved, tmp_path):
    def make(name):
        return Path(shutil.copytree(saved[name], tmp_path / f"{name}-copy"))

    return make


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_reloads_identical_outputs_and_verifies(tiny, tmp_path, name):
    original = load(_spec(tiny, name))
    out = save(original, tmp_path / "bundle")

    trust = MODELS[name][1]
    reloaded = load_bundle(out, trust_remote_code=trust)
    assert type(reloaded.model).__name__ == MODELS[name][2]
    assert _max_diff(probe_outputs(original), probe_outputs(reloaded)) == 0.0
    manifest = read_manifest(out)
    assert manifest.class_name == MODELS[name][2]
    assert manifest.spec["trust_remote_code"] is False  # trust is the loader's decision
    assert manifest.spec["source"] == "."
    assert (out / "model.safetensors").is_file()
    assert not list(out.glob("*.bin"))
    # The fingerprint is never mistaken for weights by scanners such as `tether inspect`.
    assert [w.path for w in inspect(str(out)).weight_files] == ["model.safetensors"]
    report = verify(out, trust_remote_code=trust)
    assert report.ok, report.format()
    assert report.comparison.max_abs_diff == 0.0


def test_builtin_models_are_recorded_with_their_exact_class(saved):
    assert read_manifest(saved["bert"]).spec["model_class"] == "BertModel"
    # Custom code cannot be named in transformers: the Auto class and auto_map stay.
    assert read_manifest(saved["custom"]).spec["model_class"] == "AutoModel"


def test_custom_code_bundle_carries_hashed_code_and_auto_map(tiny, saved):
    bundle = saved["custom"]
    code = bundle / "modeling_tiny_custom.py"
    assert sha256_file(code) == sha256_file(tiny["custom"] / "modeling_tiny_custom.py")
    manifest = read_manifest(bundle)
    assert manifest.files["modeling_tiny_custom.py"]["sha256"] == sha256_file(code)
    assert manifest.model_class["custom_code"] is True
    config = json.loads((bundle / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_tiny_custom.TinyCustomModel"


def test_custom_code_bundle_without_trust_raises(saved):
    with pytest.raises(UntrustedCustomCodeError):
        load(bundle_spec(saved["custom"], trust_remote_code=False))


def test_minilm_round_trip_keeps_sentence_transformers_files(minilm_dir, tmp_path):
    original = load(ModelSpec("minilm", model_class="AutoModel"))
    out = save(original, tmp_path / "minilm")
    manifest = read_manifest(out)
    for name in ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        assert (out / name).read_bytes() == (minilm_dir / name).read_bytes()
        assert name in manifest.files
    assert _max_diff(probe_outputs(original), probe_outputs(load_bundle(out))) == 0.0
    assert verify(out).ok


@pytest.mark.slow
def test_minilm_sentence_transformer_round_trip_embeds_identically(minilm_dir, tmp_path):
    original = load(ModelSpec("minilm", model_class="SentenceTransformer"))
    out = save(original, tmp_path / "minilm-st")
    reloaded = load_bundle(out)
    assert type(reloaded.model).__name__ == "SentenceTransformer"
    texts = ["tether keeps the model you run", "exactly the model you tested"]
    a = original.model.encode(texts, convert_to_tensor=True)
    b = reloaded.model.encode(texts, convert_to_tensor=True)
    assert (a - b).abs().max().item() == 0.0
    assert verify(out).ok


def test_task_spec_bundle_reloads_as_a_pipeline(tiny, tmp_path):
    spec = ModelSpec(str(tiny["distilbert-cls"]), task="text-classification")
    out = save(spec, tmp_path / "cls")
    reloaded = load_bundle(out)
    assert reloaded.pipeline is not None
    assert reloaded.pipeline("good great")[0]["label"] == expected_label(
        tiny["distilbert-cls"], "good great"
    )
    assert verify(out).ok


def test_save_after_fine_tuning_keeps_the_tuned_weights(tiny, tmp_path):
    loaded = load(_spec(tiny, "distilbert-cls"))
    before = probe_outputs(loaded)
    model = loaded.model
    model.train()
    batch = loaded.tokenizer(["good great", "bad awful"], padding=True, return_tensors="pt")
    loss = model(**batch, labels=torch.tensor([1, 0])).loss
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.5).step()
    model.eval()
    tuned = probe_outputs(loaded)
    assert _max_diff(before, tuned) > 1e-3

    out = save(loaded, tmp_path / "tuned")
    assert _max_diff(tuned, probe_outputs(load_bundle(out))) == 0.0


def test_save_refuses_a_model_its_files_cannot_reproduce(tiny, tmp_path):
    """A change that lives outside weights and config would be lost: refuse, write nothing."""
    loaded = load(_spec(tiny, "bert"))
    loaded.model.encoder.layer[1].intermediate.intermediate_act_fn = torch.nn.ReLU()
    with pytest.raises(BundleError) as info:
        save(loaded, tmp_path / "patched")
    assert "do not reproduce" in info.value.message
    assert "max abs diff" in info.value.message
    assert not (tmp_path / "patched").exists()
    assert not list(tmp_path.glob(".patched.tether-*"))


# -- tampering ------------------------------------------------------------------------------


def test_edited_weight_fails_verify_with_diff_and_file_name(copy_of):
    bundle = copy_of("bert")
    weights = load_file(bundle / "model.safetensors")
    key = "encoder.layer.0.attention.self.query.weight"
    weights[key][0, 0] += 0.5
    save_file(weights, bundle / "model.safetensors", metadata={"format": "pt"})

    report = verify(bundle)
    assert not report.ok
    assert report.changed == ["model.safetensors"]
    assert report.comparison is not None and report.comparison.max_abs_diff > 1e-4
    text = report.format()
    assert "files changed: model.safetensors" in text
    assert "DIFFERS" in text and "cosine" in text
    with pytest.raises(VerificationError, match=r"model\.safetensors"):
        report.raise_for_status()
    with pytest.raises(BundleError, match=r"changed since it was saved: model\.safetensors"):
        load_bundle(bundle)


def test_swapped_custom_code_is_caught_and_never_run(copy_of, tmp_path):
    bundle = copy_of("custom")
    sentinel = tmp_path / "code-ran"
    (bundle / "modeling_tiny_custom.py").write_text(
        f"open({str(sentinel)!r}, 'w').close()\n"
        "from transformers import BertConfig as TinyCustomConfig, BertModel as TinyCustomModel\n"
    )
    report = verify(bundle)
    assert not report.ok
    assert "modeling_tiny_custom.py" in report.changed
    assert "does not run code" in report.load_error
    with pytest.raises(BundleError, match=r"modeling_tiny_custom\.py"):
        load_bundle(bundle)
    assert not sentinel.exists()


def test_deleted_tokenizer_file_is_caught(copy_of):
    bundle = copy_of("bert")
    (bundle / "tokenizer.json").unlink()
    report = verify(bundle)
    assert not report.ok
    assert report.missing == ["tokenizer.json"]
    assert "files missing: tokenizer.json" in report.format()
    with pytest.raises(IncompleteBundleError, match=r"tokenizer\.json") as info:
        load_bundle(bundle)
    assert info.value.missing == ["tokenizer.json"]


@pytest.mark.parametrize("other", ["BertForMaskedLM", "AutoModelForMaskedLM"])
def test_loading_as_another_class_raises_naming_both(saved, other):
    with pytest.raises(BundleClassMismatchError) as info:
        load_bundle(saved["bert"], model_class=other)
    assert "saved and fingerprinted as BertModel" in info.value.message
    assert "BertForMaskedLM" in info.value.message
    assert "model_class='BertModel'" in info.value.hint
    assert (info.value.saved_class, info.value.requested_class) == ("BertModel", "BertForMaskedLM")
    assert info.value.path == str(saved["bert"].resolve())


def test_verify_as_another_class_fails_and_says_what_differs(saved):
    report = verify(saved["bert"], model_class="AutoModelForSequenceClassification")
    assert not report.ok
    assert "BertModel" in report.load_error
    assert "BertForSequenceClassification" in report.load_error


def test_extra_file_fails_verify(copy_of):
    bundle = copy_of("bert")
    (bundle / "sitecustomize.py").write_text("print('hi')\n")
    report = verify(bundle)
    assert report.extra == ["sitecustomize.py"]
    assert not report.ok


def test_filling_in_the_model_card_is_reported_but_passes(copy_of):
    bundle = copy_of("bert")
    readme = bundle / "README.md"
    readme.write_text(readme.read_text().replace("**TODO**: who to contact", "ml-team@"))
    report = verify(bundle)
    assert report.ok, report.format()
    assert report.docs_changed == ["README.md"]
    assert load_bundle(bundle) is not None


def test_unfinished_bundle_cannot_be_loaded(copy_of):
    bundle = copy_of("bert")
    (bundle / MANIFEST_NAME).write_text(json.dumps({"format": "tether-bundle/1"}))
    with pytest.raises(IncompleteBundleError, match="never finished"):
        load(ModelSpec(str(bundle), model_class="AutoModel"))


# -- publishing -----------------------------------------------------------------------------


def test_save_refuses_to_replace_without_overwrite(tiny, saved):
    with pytest.raises(BundleError, match="already holds a bundle") as info:
        save(_spec(tiny, "bert"), saved["bert"])
    assert "overwrite=True" in info.value.hint


def test_save_refuses_a_directory_that_is_not_a_bundle(tiny, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match="not a tether bundle"):
        save(_spec(tiny, "bert"), tmp_path, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_overwrite_replaces_the_bundle_and_leaves_nothing_beside(
    tiny, copy_of, monkeypatch, exchange
):
    if not exchange:
        monkeypatch.setattr(atomic, "exchange", lambda a, b: False)
    bundle = copy_of("bert")
    save(_spec(tiny, "roberta"), bundle, overwrite=True)
    assert read_manifest(bundle).class_name == "RobertaModel"
    assert verify(bundle).ok
    assert sorted(p.name for p in bundle.parent.iterdir()) == [bundle.name]


#: Loads the new model once, then forks one child per job; each child saves over an
#: old bundle and is SIGKILLed at a named stage (the child patches the save's stage
#: seam, ``_reached``) or, from outside, at a
#: fraction of the time a whole save takes (timed first, on a scratch directory), so
#: that every timed kill lands mid-save on a slow machine and a fast one alike. Each
#: job reports [exit status, whether the save's temp dir existed, whether the child was
#: still running when it was killed]; a timed save that finished before its kill is
#: restored and retried with half the delay. One thread per process keeps fork safe with
#: torch's OpenMP pool.
_KILL_DRIVER = """
import json, os, shutil, signal, sys, time, traceback
from pathlib import Path
from tether import ModelSpec, load, save
from tether.bundles import atomic
from tether.bundles import save as save_module


def kill_at(target):
    def reached(stage):
        if stage == target:
            os.kill(os.getpid(), signal.SIGKILL)
    return reached

loaded = load(ModelSpec(sys.argv[1], model_class="AutoModel"))


def wait_for_temp_dir(out):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if list(out.parent.glob(".bundle.tether-tmp-*")):
            return True
        time.sleep(0.002)
    return False


timing_out = Path(sys.argv[3])


# A child saves and, once save() has returned, writes the monotonic time to `done`: the
# proof that it finished (its exit status alone cannot say whether a kill landed during
# the save or during the process's own teardown).
def start_save(job, done):
    pid = os.fork()
    if pid == 0:
        try:
            if job["kill_at"]:
                save_module._reached = kill_at(job["kill_at"])
            if job["no_exchange"]:
                atomic.exchange = lambda a, b: False
            save(loaded, Path(job["out"]), overwrite=True)
            done.write_text(repr(time.monotonic()))
            os._exit(0)
        except BaseException:
            traceback.print_exc()
            os._exit(3)
    return pid


timing_done = timing_out.parent / "timing-done"
pid = start_save({"out": str(timing_out), "kill_at": None, "no_exchange": False}, timing_done)
wait_for_temp_dir(timing_out)
started = time.monotonic()
assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
save_seconds = float(timing_done.read_text()) - started

statuses = []
for index, job in enumerate(json.loads(sys.argv[2])):
    out = Path(job["out"])
    done = timing_out.parent / f"done-{index}"
    temp_seen = running = None
    if job["fraction"] is None:
        pid = start_save(job, done)
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    else:
        # A save that finished before its timed kill (the machine sped up) is put back
        # to the old bundle and tried again with half the delay, so the kill lands mid-save.
        delay = job["fraction"] * save_seconds
        for _ in range(8):
            pid = start_save(job, done)
            temp_seen = wait_for_temp_dir(out)
            time.sleep(delay)
            os.kill(pid, signal.SIGKILL)
            status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            running = not done.exists()
            if running:
                break
            done.unlink()
            shutil.rmtree(out)
            shutil.copytree(job["old"], out)
            delay /= 2
    statuses.append([status, temp_seen, running])
print(json.dumps(statuses))
"""

#: stage -> (use two renames instead of renameat2, what OUT_DIR holds right after the kill)
_KILL_STAGES = {
    "started": (False, "old"),
    "model-written": (False, "old"),
    "fingerprint-written": (False, "old"),
    "card-written": (False, "old"),
    "manifest-written": (False, "old"),
    "swapped": (False, "new"),  # renameat2: old -> new in one step
    "old-aside": (True, "absent"),  # two renames: nothing in between; recover() restores
}
#: Timed kills, as fractions of a whole save measured after its temp dir appears.
_KILL_FRACTIONS = (0.0, 0.05, 0.15, 0.3, 0.45, 0.6)


@pytest.fixture(scope="module")
def killed_saves(tiny, saved, tmp_path_factory):
    """Run every kill job over a copy of the old (BERT) bundle; job name -> (status, out)."""
    root = tmp_path_factory.mktemp("killed")
    jobs = [(stage, stage, None, no_ex) for stage, (no_ex, _) in _KILL_STAGES.items()]
    jobs += [(f"at-{f}", None, f, False) for f in _KILL_FRACTIONS]
    specs, outs = [], {}
    for name, kill_at, fraction, no_exchange in jobs:
        (root / name).mkdir()
        outs[name] = Path(shutil.copytree(saved["bert"], root / name / "bundle"))
        specs.append(
            {
                "out": str(outs[name]),
                "kill_at": kill_at,
                "fraction": fraction,
                "no_exchange": no_exchange,
                "old": str(saved["bert"]),
            }
        )
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILL_DRIVER,
            str(tiny["roberta"]),
            json.dumps(specs),
            str(root / "timing" / "bundle"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    statuses = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: (*status, outs[name]) for (name, *_), status in zip(jobs, statuses, strict=True)}


def _outcome(out: Path) -> str:
    """'absent', 'old' or 'new' -- anything else (a loadable half bundle) fails the test."""
    if not out.exists():
        return "absent"
    report = verify(out)
    assert report.ok, report.format()
    return {"BertModel": "old", "RobertaModel": "new"}[report.saved_class]


def _assert_leftovers_unloadable_or_complete(out: Path) -> None:
    for leftover in out.parent.glob(f".{out.name}.tether-*"):
        try:
            load(ModelSpec(str(leftover), model_class="AutoModel"))
        except TetherError:
            continue  # an unfinished save refuses to load: good
        assert verify(leftover).ok, f"half-written {leftover} loads"


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(_KILL_STAGES))
def test_sigkill_at_each_save_stage_leaves_old_or_new_bundle(killed_saves, stage):
    status, _, _, out = killed_saves[stage]
    assert status == -signal.SIGKILL
    assert _outcome(out) == _KILL_STAGES[stage][1]
    _assert_leftovers_unloadable_or_complete(out)
    recover(out)
    assert _outcome(out) in ("old", "new")
    assert sorted(p.name for p in out.parent.iterdir()) == ["bundle"]


@pytest.mark.slow
@pytest.mark.parametrize("fraction", _KILL_FRACTIONS)
def test_sigkill_at_arbitrary_moments_never_publishes_a_partial_bundle(killed_saves, fraction):
    """Killed from outside at timed moments, each one mid-write."""
    status, temp_seen, running, out = killed_saves[f"at-{fraction}"]
    # The kill happened mid-save: the temp dir existed, the child had not exited yet
    # and died of the signal (a save that finished first would test nothing).
    assert temp_seen and running and status == -signal.SIGKILL
    assert _outcome(out) in ("old", "new")
    _assert_leftovers_unloadable_or_complete(out)


# -- command line ---------------------------------------------------------------------------


def _cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_cli_save_verify_and_tamper_exit_codes(tiny, tmp_path):
    out = tmp_path / "b"
    result = _cli("save", tiny["custom"], out, "--trust-remote-code", "--license", "mit")
    assert result.exit_code == 0, result.output
    assert "saved TinyCustomModel bundle" in result.output
    assert _cli("verify", out, "--trust-remote-code").exit_code == 0

    data = json.loads(_cli("verify", out, "--trust-remote-code", "--json").output)
    assert data["ok"] is True and data["comparison"]["max_abs_diff"] == 0.0

    (out / "tokenizer.json").unlink()
    result = _cli("verify", out, "--trust-remote-code")
    assert result.exit_code == 1
    assert "FAILED" in result.output and "files missing: tokenizer.json" in result.output


def test_cli_save_accepts_a_spec_file_and_refuses_overwrite(tiny, tmp_path):
    spec_file = _spec(tiny, "bert").save(tmp_path / "spec.json")
    out = tmp_path / "b"
    assert _cli("save", spec_file, out).exit_code == 0
    assert read_manifest(out).origin["source"] == str(tiny["bert"])
    result = _cli("save", spec_file, out)
    assert result.exit_code == 2
    assert "already holds a bundle" in result.output


def test_cli_verify_with_another_class_fails(saved):
    result = _cli("verify", saved["bert"], "--class", "BertForMaskedLM")
    assert result.exit_code == 1
    assert "saved and fingerprinted as BertModel" in result.output


# -- the manifest checks load() runs, one cause at a time (issue 16) -----------------------

from tether import SpecError  # noqa: E402


def _edit_manifest(bundle, **changes):
    path = bundle / MANIFEST_NAME
    data = json.loads(path.read_text())
    data.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del data[key]
    path.write_text(json.dumps(data))


def test_a_directory_without_a_manifest_is_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match=f"has no {MANIFEST_NAME}"):
        read_manifest(tmp_path)
    with pytest.raises(BundleError, match="not a tether bundle"):
        load_bundle(tmp_path)


@pytest.mark.parametrize("content", ['{"format": "tether-bundle/0", "complete": true}', "[1]"])
def test_a_manifest_of_another_format_is_refused(copy_of, content):
    bundle = copy_of("bert")
    (bundle / MANIFEST_NAME).write_text(content)
    with pytest.raises(BundleError, match="not a tether bundle manifest") as info:
        read_manifest(bundle)
    assert not isinstance(info.value, IncompleteBundleError)


def test_a_manifest_missing_fields_names_them(copy_of):
    bundle = copy_of("bert")
    _edit_manifest(bundle, files=None, versions=None)
    with pytest.raises(BundleError, match=r"lacks manifest field\(s\): files, versions"):
        read_manifest(bundle)
    with pytest.raises(BundleError, match="lacks manifest field"):
        load(ModelSpec(str(bundle), model_class="AutoModel"))


def test_a_manifest_with_complete_false_is_unfinished(copy_of):
    bundle = copy_of("bert")
    _edit_manifest(bundle, complete=False)
    with pytest.raises(IncompleteBundleError, match="never finished"):
        read_manifest(bundle)


def test_a_same_size_edit_of_a_small_file_is_caught_on_load(copy_of):
    bundle = copy_of("bert")
    config = bundle / "config.json"
    text = config.read_text()
    edited = text.replace('"hidden_act": "gelu"', '"hidden_act": "relu"')
    assert edited != text and len(edited) == len(text)
    config.write_text(edited)
    with pytest.raises(BundleError, match=r"changed since it was saved: config\.json") as info:
        load_bundle(bundle)
    assert not isinstance(info.value, IncompleteBundleError)


def test_a_resized_file_is_caught_on_load(copy_of):
    bundle = copy_of("bert")
    with (bundle / "tokenizer.json").open("a") as handle:
        handle.write("\n")
    with pytest.raises(BundleError, match=r"changed since it was saved: tokenizer\.json"):
        load_bundle(bundle)


def test_missing_and_changed_files_report_missing_first(copy_of):
    bundle = copy_of("bert")
    (bundle / "tokenizer.json").unlink()
    (bundle / "config.json").write_text("{}")
    with pytest.raises(IncompleteBundleError, match=r"listed in its manifest: tokenizer\.json\.\n"):
        load_bundle(bundle)


def test_an_edited_model_card_does_not_stop_a_load(copy_of):
    bundle = copy_of("bert")
    (bundle / "README.md").write_text("rewritten entirely\n")
    assert type(load_bundle(bundle).model).__name__ == "BertModel"
    (bundle / "README.md").unlink()
    assert type(load_bundle(bundle).model).__name__ == "BertModel"


def test_a_class_that_only_loading_reveals_is_checked_after_loading(copy_of):
    bundle = copy_of("bert")
    manifest = json.loads((bundle / MANIFEST_NAME).read_text())
    manifest["model_class"]["name"] = "SomeOtherModel"
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(BundleClassMismatchError, match="being loaded as BertModel") as info:
        load_bundle(bundle)
    assert "saved and fingerprinted as SomeOtherModel" in info.value.message


def test_a_concrete_class_name_is_compared_before_loading(saved, monkeypatch):
    import transformers

    def never(*args, **kwargs):
        raise AssertionError("from_pretrained ran although the class was known to differ")

    monkeypatch.setattr(transformers.BertForMaskedLM, "from_pretrained", never)
    with pytest.raises(BundleClassMismatchError, match="being loaded as BertForMaskedLM"):
        load_bundle(saved["bert"], model_class="BertForMaskedLM")
    assert type(load_bundle(saved["bert"], model_class="BertModel").model).__name__ == "BertModel"


def test_bundle_spec_reads_the_manifest_and_applies_overrides(saved):
    spec = bundle_spec(saved["bert"])
    assert spec.source == str(saved["bert"].resolve())
    assert spec.model_class == read_manifest(saved["bert"]).spec["model_class"]
    assert bundle_spec(saved["bert"], max_length=7).max_length == 7
    with pytest.raises(SpecError, match="Unknown ModelSpec field in overrides"):
        bundle_spec(saved["bert"], max_len=7)
