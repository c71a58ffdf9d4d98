# fpdm-bench — set-up, tests and benchmarks. `make help` lists the targets.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# On this CPU machine `torch==2.13.0` takes the CPU wheel on disk; on a GPU machine install your CUDA
# torch + torchvision first (or set TORCH_SPEC to it) and the torchvision shim stays inactive.
TORCH_SPEC ?= torch==2.13.0
TV_SPEC    ?= torchvision==0.28.0
MODEL   ?= fpdm
DATASET ?= synthetic
LIMIT   ?=
# the PHOENIX datasets (videos) default to protocol phoenix: standard's metrics, same settings, plus the
# sequence metrics (flicker, tOF, tLP, FVD); a run under a dataset's default protocol has no suffix
DEFAULT_PROTOCOL = $(if $(filter %phoenix,$(DATASET)),phoenix,standard)
PROTOCOL ?= $(DEFAULT_PROTOCOL)
RUNS    ?= runs
PSUFFIX := $(if $(filter $(DEFAULT_PROTOCOL),$(PROTOCOL)),,-$(PROTOCOL))
export HF_HUB_OFFLINE := 1

TINY_OUT ?= runs/train-tiny
TINY_DIR := reference_impl/checkpoints
PIDM_DIR := baselines/pidm/checkpoints
PIDM_OUT ?= runs/train-tiny-pidm
CFLD_DIR := baselines/cfld/checkpoints
CFLD_OUT ?= runs/train-tiny-cfld
POCOLD_DIR := baselines/pocold/checkpoints
POCOLD_OUT ?= runs/train-tiny-pocold
# the train-tiny* targets' seed (stage 1 and 2 alike); the shipped checkpoints are seed 0. Set on the command
# line only (make SEED=1): := keeps a SEED in the environment from changing a reproduction check
SEED := 0
# the like-for-like sets (docs/training.md): SET=paper|prior, trained into $(LFL_OUT)/$(SET)
SET ?=
LFL_OUT ?= runs/like-for-like
# extra arguments for every train command / every model run of the like-for-like targets, e.g. a smoke
# test: LFL_ARGS="--max-steps 2" LFL_RUN_ARGS="--steps 2" LIMIT=2 LFL_PROTOCOL=paired RUNS=/tmp/runs
LFL_ARGS ?=
LFL_RUN_ARGS ?=
LFL_PROTOCOL ?=
# training pairs each like-for-like checkpoint's sampling search runs on (tools/sampling_search.py)
LFL_SEARCH_PAIRS ?= 32
# where bench-like-for-like draws its grids (the README's)
LFL_GRIDS ?= docs

REPORT_OUT ?= reports/example
REPORT_MODELS := fpdm pidm cfld pocold
PROFILES := $(RUNS)/profile-synthetic

.PHONY: help install test test-fast test-published bench-published gpu-wheels gpu-check bench regress clean bench-scoring bench-kernels bench-runner train-tiny train-tiny-pidm train-tiny-cfld train-tiny-pocold train-tiny-all train-like-for-like search-like-for-like bench-like-for-like grids report

help:
	@echo "make install                 create $(VENV) and install fpdm-bench with everything it needs (offline-capable)"
	@echo "make test                    run the whole test suite (what CI runs)"
	@echo "make test-fast               the suite without the tests marked slow (training, kills, Inception passes; < 60 s)"
	@echo "make test-published          the published-size tests (FPDM, PIDM, CFLD, PoCoLD with random weights; ~12 min, ~8 GB; not in make test)"
	@echo "make bench-published         profile the four published configurations (random weights, 2 steps, batch 1) and write $(RUNS)/published/published.md"
	@echo "make gpu-wheels              download what a GPU machine without a package index lacks into .whl/ (diffusers, importlib_metadata)"
	@echo "make gpu-check               on a GPU machine: every model's published configuration in fp32/fp16/bf16, profiles at batch 1 and 8, torchrun + NCCL (tools/gpu_check.sh)"
	@echo "make bench MODEL=m [DATASET=d] [LIMIT=n] [PROTOCOL=p]   run the floors and MODEL on DATASET and print the metric table (protocol: standard; phoenix for the PHOENIX datasets)"
	@echo "make regress BASE=run NEW=run [TOL=fid=0.5,ssim=0.005] [TOLFILE=tol.yaml] [MD=summary.md] [REGRESS_STATUS=file]   compare NEW with BASE (CIs, verdicts); make exits 2 on a regression and on a refusal alike: compare's own status (1 = regression, 2 = refused) is printed and written to REGRESS_STATUS"
	@echo "make train-tiny [TINY_OUT=dir] [SEED=0]  retrain both shipped tiny FPDMs (DeepFashion, PHOENIX; ~35 min on 2 CPU cores) and compare them with the shipped ones, within the recipe's training noise (the shipped folder's reproduce-tolerance.yaml); SEED (default 0, the shipped one) also works for the three targets below"
	@echo "make train-tiny-pidm [PIDM_OUT=dir] [SEED=0]  retrain the shipped tiny PIDM (synthetic DeepFashion; ~30 min on 2 CPU cores) and compare it with the shipped one"
	@echo "make train-tiny-cfld [CFLD_OUT=dir] [SEED=0]  retrain the shipped tiny CFLD (synthetic DeepFashion; ~15 min on 2 CPU cores) and compare it with the shipped one"
	@echo "make train-tiny-pocold [POCOLD_OUT=dir] [SEED=0]  retrain the shipped tiny PoCoLD (synthetic DeepFashion, rendered part maps; ~10 min on 2 CPU cores) and compare it with the shipped one"
	@echo "make train-tiny-all          all four train-tiny* targets in turn (~80 min on 2 CPU cores): every shipped tiny checkpoint retrained into its scratch folder and compared with the shipped one; the wall time of each, the shipped weights' total size"
	@echo "make train-like-for-like SET=paper|prior [LFL_OUT=dir]  train one like-for-like set (FPDM on both embedded sets, PIDM, CFLD, PoCoLD; one budget, seed 0; docs/training.md) into LFL_OUT/SET, with each model's wall time"
	@echo "make search-like-for-like SET=paper|prior [LFL_SEARCH_PAIRS=32]  the same sampling search for every model of the set (sampler, temperature, guidance; tau with the prior) on training pairs; the choice goes to LFL_OUT/SET/search/<model>/"
	@echo "make bench-like-for-like SET=paper|prior [LFL_OUT=dir] [LIMIT=n] [LFL_PROTOCOL=p]  bench that set with the floors (each model at its searched sampling, if searched): one table per embedded set (rows named model-SET) and a report with significance marks under $(RUNS)/like-for-like/SET/"
	@echo "make grids                   bench the floors + fpdm (+ pidm, cfld, pocold) on the embedded datasets and redraw docs/grid-*.png (README, docs/embedded-benchmark.md)"
	@echo "make report [REPORT_OUT=dir]  bench all models, a small sweep, profiles and the stage-1 ablation on the embedded default and write the example report (tables, figures, index.html) to $(REPORT_OUT)"
	@echo "make bench-scoring           pytest-benchmark: one-pass scorer vs the reference libraries one by one"
	@echo "make bench-kernels           pytest-benchmark: the metric kernels (SSIM, PSNR, MAE, Frechet distance, FID fold, KID, Inception) on a fixed batch (~1 min)"
	@echo "make bench-runner            pytest-benchmark: the harness overhead of fpdm-bench run around a fixed-cost dummy model (~1 min)"
	@echo "make clean                   remove runs/, caches and build files (keeps $(VENV) and data/)"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/pip install -q --disable-pip-version-check --no-deps "$(TV_SPEC)"
	$(BIN)/pip install -q --disable-pip-version-check -e ".[test]"
	$(BIN)/python -c "import fpdm_bench, torchvision, diffusers, transformers; print('fpdm-bench installed; torchvision shim:', fpdm_bench._tv_shim.state)"
	touch $@

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not published"

test-published: install
	$(BIN)/python -m pytest -q -m published

bench-published: install
	$(BIN)/python tools/bench_published.py --out $(RUNS)/published

# diffusers is pure Python: one wheel serves the GPU machine's Python 3.12 (see tools/gpu_check.sh)
gpu-wheels:
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
	  -d .whl "diffusers==$$($(BIN)/python -c 'import diffusers; print(diffusers.__version__)')" importlib_metadata

gpu-check:
	bash tools/gpu_check.sh $(GPU_CHECK_ARGS)

# The floors are whatever `fpdm-bench models --floors` lists (adapters that declare themselves floors).
bench: install
	@set -e; runs=""; for m in $$($(BIN)/fpdm-bench models --floors) $(MODEL); do \
	  run=$(RUNS)/$(DATASET)/$$m$(PSUFFIX); case " $$runs " in *" $$run "*) continue;; esac; \
	  $(BIN)/fpdm-bench run --model $$m --dataset $(DATASET) --protocol $(PROTOCOL) --out $$run \
	    $(if $(LIMIT),--limit $(LIMIT)) > /dev/null; \
	  runs="$$runs $$run"; \
	done; \
	$(BIN)/fpdm-bench report $$runs

# Regression check of two runs (run folders or results.json): per-metric difference, 95 % CI, verdict;
# compare exits 1 when a metric got worse beyond its CI and tolerance, 2 when it refuses (unreadable or
# incomparable runs; see `fpdm-bench compare --help`). GNU make exits 2 whenever a recipe fails, whatever
# its status ("Error 1" in its message is the recipe's), so make cannot pass 1 through: the recipe prints
# compare's status and, with REGRESS_STATUS=FILE, writes it there (2 for a usage error; no file when make
# failed before). CI scripts that must tell a regression from a refusal read that file or run
# `fpdm-bench compare` directly.
regress: install
	@$(if $(REGRESS_STATUS),rm -f "$(REGRESS_STATUS)";) test -n "$(BASE)" -a -n "$(NEW)" || { echo "usage: make regress BASE=run-or-results.json NEW=run-or-results.json [TOL=fid=0.5,ssim=0.005] [TOLFILE=tol.yaml] [MD=summary.md] [REGRESS_STATUS=file]" >&2; $(if $(REGRESS_STATUS),echo 2 > "$(REGRESS_STATUS)";) exit 2; }
	@$(BIN)/fpdm-bench compare $(BASE) $(NEW) $(if $(TOL),--tolerance $(TOL)) $(if $(TOLFILE),--tolerance-file $(TOLFILE)) \
	  $(if $(MD),--markdown $(MD)); s=$$?; $(if $(REGRESS_STATUS),echo $$s > "$(REGRESS_STATUS)";) \
	  test $$s -eq 0 || echo "compare exit status $$s ($$(test $$s -eq 1 && echo regression || echo refused)); make reports it as Error $$s and exits 2" >&2; exit $$s

# The shipped checkpoints in $(TINY_DIR)/tiny and $(TINY_DIR)/tiny-phoenix were made by
# `make train-tiny TINY_OUT=$(TINY_DIR)`; each retrain is compared with the shipped metrics
# (`compare --no-ci`: a reproduction check, so the tolerance alone decides). The tolerance is the
# recipe's training noise, kept beside the shipped metrics in reproduce-tolerance.yaml (written by
# tools/training_noise.py from several trainings of the recipe: the distance to a one-sided 99 % prediction
# bound for one more training, at least 1e-4 + 2 %; docs/training.md, "Training noise").
# $(call reproduce_tol,SHIPPED_FOLDER): the folder's tolerance file as compare's option (expanded only when
# comparing, so storing a new shipped checkpoint does not need one yet)
reproduce_tol = --tolerance-file $(or $(wildcard $(1)/reproduce-tolerance.yaml),$(error $(1)/reproduce-tolerance.yaml \
  is missing: write it with tools/training_noise.py (docs/training.md, "Training noise")))
# $(call train_tiny,NAME,DATASET): stage 1, stage 2 (config NAME), stage-1 eval, bench, then compare with the
# shipped metrics (or, when writing into $(TINY_DIR) itself, store them as the shipped ones).
define train_tiny
	$(BIN)/fpdm-bench train stage1 --config tiny --dataset $(2) --seed $(SEED) --out $(TINY_OUT)/$(1)/stage1 --quiet
	$(BIN)/fpdm-bench train stage2 --config $(1) --dataset $(2) --seed $(SEED) --stage1 $(TINY_OUT)/$(1)/stage1 \
	  --out $(TINY_OUT)/$(1)/stage2 --set train.save_dtype=float16 --set train.keep_checkpoint=false --quiet
	$(BIN)/fpdm-bench eval stage1 --checkpoint $(TINY_OUT)/$(1)/stage1 --dataset $(2) --out $(TINY_OUT)/$(1)/stage1-eval
	$(BIN)/fpdm-bench run --model fpdm --checkpoint $(TINY_OUT)/$(1) --dataset $(2) --out $(TINY_OUT)/$(1)-bench \
	  --protocol paired --no-progress > /dev/null
	$(if $(filter $(TINY_DIR),$(TINY_OUT)),cp $(TINY_OUT)/$(1)-bench/results.json $(TINY_DIR)/$(1)/bench-paired.json && \
	  rm -rf $(TINY_OUT)/$(1)-bench,$(BIN)/fpdm-bench compare --no-ci $(call reproduce_tol,$(TINY_DIR)/$(1)) \
	  $(TINY_DIR)/$(1)/bench-paired.json $(TINY_OUT)/$(1)-bench/results.json)
endef

train-tiny: install
	$(call train_tiny,tiny,synthetic)
	$(call train_tiny,tiny-phoenix,synthetic-phoenix)

# The shipped tiny PIDM in $(PIDM_DIR)/tiny was made by `make train-tiny-pidm PIDM_OUT=$(PIDM_DIR)`, the
# tiny CFLD in $(CFLD_DIR)/tiny by `make train-tiny-cfld CFLD_OUT=$(CFLD_DIR)`, the tiny PoCoLD likewise
# (`make train-tiny-pocold POCOLD_OUT=$(POCOLD_DIR)`); otherwise a retrain is
# compared with the shipped metrics (its own reproduce-tolerance.yaml, as for train-tiny).
# $(call train_baseline,MODEL,DIR,OUT): train MODEL's tiny config, bench it, compare or store.
define train_baseline
	$(BIN)/fpdm-bench $(1) train --config tiny --dataset synthetic --seed $(SEED) --out $(3)/tiny --quiet
	$(BIN)/fpdm-bench run --model $(1) --checkpoint $(3)/tiny --dataset synthetic --out $(3)/tiny-bench \
	  --protocol paired --no-progress > /dev/null
	$(if $(filter $(2),$(3)),cp $(3)/tiny-bench/results.json $(2)/tiny/bench-paired.json && \
	  rm -rf $(3)/tiny-bench,$(BIN)/fpdm-bench compare --no-ci $(call reproduce_tol,$(2)/tiny) \
	  $(2)/tiny/bench-paired.json $(3)/tiny-bench/results.json)
endef

train-tiny-pidm: install
	$(call train_baseline,pidm,$(PIDM_DIR),$(PIDM_OUT))

train-tiny-cfld: install
	$(call train_baseline,cfld,$(CFLD_DIR),$(CFLD_OUT))

train-tiny-pocold: install
	$(call train_baseline,pocold,$(POCOLD_DIR),$(POCOLD_OUT))

# Every shipped tiny checkpoint, retrained by its own target (each compares with the shipped metrics);
# all run even if one fails, which then fails the whole. Prints each target's wall time and the total
# size of the shipped weights.
TINY_ALL := train-tiny train-tiny-pidm train-tiny-cfld train-tiny-pocold
SHIPPED_WEIGHTS = $(wildcard $(TINY_DIR)/*/stage*/model.safetensors $(PIDM_DIR)/tiny/model.safetensors \
  $(CFLD_DIR)/tiny/*.bin $(CFLD_DIR)/tiny/vae/model.safetensors $(POCOLD_DIR)/tiny/*/diffusion_pytorch_model.bin \
  $(POCOLD_DIR)/tiny/vae/model.safetensors)

train-tiny-all: install
	@failed=""; times=""; for t in $(TINY_ALL); do \
	  start=$$(date +%s); $(MAKE) --no-print-directory $$t || failed="$$failed $$t"; s=$$(( $$(date +%s) - start )); \
	  times="$$times$$t: $$((s / 60)) min $$((s % 60)) s\n"; \
	done; printf "\nwall time per target (this machine, $$(nproc) cores):\n$$times"; \
	echo "shipped tiny weights: $$(cat $(SHIPPED_WEIGHTS) | wc -c) bytes in $(words $(SHIPPED_WEIGHTS)) files"; \
	test -z "$$failed" || { echo "failed:$$failed" >&2; exit 1; }

# The like-for-like sets (issue 29, docs/training.md "The like-for-like sets"): every model trained on
# the same embedded data with one budget, 32,000 training examples (steps x batch), seed 0. SET=paper:
# each model generates the image itself (its published recipe at toy scale); SET=prior: each diffuses
# the residual over the keypoint warp (fpdm_bench/modeling/warp_prior.py). The baselines' recipes are
# their configs/tiny-$(SET).yaml; FPDM's are its shipped tiny configs at LFL_FPDM_STEPS x 16, with the
# prior turned off and the paper's sampler (DDPM 20, guidance 2) for SET=paper, on both embedded sets;
# its stage 1 (the same in both sets) is the shipped one, which `make train-tiny` reproduces byte for
# byte. A model whose folder is finished is not retrained.
LFL_FPDM_STEPS := 2000
LFL_FPDM_paper := --set stage2.prior=none --set 'stage2.sampling={scheduler: ddpm, steps: 20, guidance: 2.0, source_strength: 1.0}'
LFL_FPDM_prior :=
LFL_SETS := paper prior
# every model of a set, once: MODEL:FOLDER:DATASET (FOLDER under LFL_OUT/SET; FPDM's fpdm-CONFIG trains
# its shipped tiny config CONFIG, a baseline its configs/tiny-SET.yaml)
LFL_MODELS := fpdm:fpdm-tiny:synthetic fpdm:fpdm-tiny-phoenix:synthetic-phoenix pidm:pidm:synthetic \
  cfld:cfld:synthetic pocold:pocold:synthetic
# $(call lfl_on,DATASET): the set's MODEL:FOLDER entries on DATASET
lfl_on = $(patsubst %:$(1),%,$(filter %:$(1),$(LFL_MODELS)))
# shell: split the loop variable mfd (an LFL_MODELS entry) into m, f and d
lfl_fields = m=$${mfd%%:*}; rest=$${mfd\#*:}; f=$${rest%%:*}; d=$${rest\#*:}
lfl_check = @case " $(LFL_SETS) " in *" $(SET) "*) ;; *) echo "usage: make $@ SET=paper|prior [LFL_OUT=dir]" >&2; exit 2;; esac

train-like-for-like: install
	$(lfl_check)
	@set -e; out=$(LFL_OUT)/$(SET); mkdir -p $$out; times=""; \
	for mfd in $(LFL_MODELS); do \
	  $(lfl_fields); \
	  if [ $$m = fpdm ]; then \
	    c=$${f#fpdm-}; test -f $$out/$$f/stage2/train_info.json && continue; start=$$(date +%s); \
	    rm -rf $$out/$$f/stage1 && mkdir -p $$out/$$f && cp -r $(TINY_DIR)/$$c/stage1 $$out/$$f/stage1; \
	    $(BIN)/fpdm-bench train stage2 --config $$c --dataset $$d --seed 0 --stage1 $$out/$$f/stage1 \
	      --out $$out/$$f/stage2 --set train.max_steps=$(LFL_FPDM_STEPS) $(LFL_FPDM_$(SET)) \
	      --set train.save_dtype=float16 --set train.keep_checkpoint=false --quiet $(LFL_ARGS); \
	  else \
	    test -f $$out/$$f/train_info.json && continue; start=$$(date +%s); \
	    $(BIN)/fpdm-bench $$m train --config tiny-$(SET) --dataset $$d --seed 0 --out $$out/$$f --quiet $(LFL_ARGS); \
	  fi; \
	  s=$$(( $$(date +%s) - start )); times="$$times$$f: $$((s / 60)) min $$((s % 60)) s\n"; \
	done; if [ -n "$$times" ]; then printf "$$times" | tee -a $$out/wall_times.txt; else echo "$$out: every model already trained"; fi

# $(call lfl_bench,DATASET,MODEL:FOLDER ...): the floors (the `make bench` runs, reused) and each model of
# the set on DATASET under LFL_PROTOCOL (default: the dataset's, as `make bench`) into a report (rows named
# model-SET; --label needs a report folder) whose Markdown tables, with significance marks, are printed.
define lfl_bench
	@set -e; d=$(1); runs=""; labels=""; p=standard; case $$d in *phoenix) p=phoenix;; esac; \
	sfx=""; if [ -n "$(LFL_PROTOCOL)" ] && [ "$(LFL_PROTOCOL)" != $$p ]; then p=$(LFL_PROTOCOL); sfx=-$$p; fi; \
	for m in $$($(BIN)/fpdm-bench models --floors); do \
	  $(BIN)/fpdm-bench run --model $$m --dataset $$d --protocol $$p --out $(RUNS)/$$d/$$m$$sfx $(if $(LIMIT),--limit $(LIMIT)) > /dev/null; \
	  runs="$$runs $(RUNS)/$$d/$$m$$sfx"; \
	done; \
	for mf in $(2); do m=$${mf%%:*}; run=$(RUNS)/like-for-like/$(SET)/$$d/$$m$$sfx; \
	  chosen=$(LFL_OUT)/$(SET)/search/$${mf#*:}/chosen.args; args=$$(cat $$chosen 2>/dev/null || true); \
	  $(BIN)/fpdm-bench run --model $$m --checkpoint $(LFL_OUT)/$(SET)/$${mf#*:} --dataset $$d --protocol $$p \
	    --out $$run $(if $(LIMIT),--limit $(LIMIT)) $$args $(LFL_RUN_ARGS) > /dev/null; \
	  runs="$$runs $$run"; labels="$$labels --label $$run=$$m-$(SET)"; \
	done; \
	rep=$(RUNS)/like-for-like/$(SET)/report-$$d$$sfx; \
	$(BIN)/fpdm-bench report $$runs $$labels --out $$rep --force > /dev/null; cat $$rep/tables/*.md; echo; \
	grid=$(LFL_GRIDS)/grid-like-for-like-$(SET)-$$d.png; \
	$(BIN)/fpdm-bench grid $$(echo $$runs | tr ' ' '\n' | grep -v '/oracle') $$labels --rows 6 --out $$grid --force; \
	echo "grid: $$grid"
endef

# The sampling search the tiny FPDM got (docs/models/fpdm.md), the same for every model of the set:
# published sampler / deterministic at temperature 0 / ... (tools/sampling_search.py), on the first
# LFL_SEARCH_PAIRS training pairs, lowest MAE kept; bench-like-for-like then runs each at its choice.
search-like-for-like: install
	$(lfl_check)
	@set -e; for mfd in $(LFL_MODELS); do \
	  $(lfl_fields); \
	  $(BIN)/python tools/sampling_search.py --model $$m --checkpoint $(LFL_OUT)/$(SET)/$$f --dataset $$d \
	    --out $(LFL_OUT)/$(SET)/search/$$f --limit $(LFL_SEARCH_PAIRS) $(if $(filter prior,$(SET)),--prior); \
	done

bench-like-for-like: install
	$(lfl_check)
	$(call lfl_bench,synthetic,$(call lfl_on,synthetic))
	$(call lfl_bench,synthetic-phoenix,$(call lfl_on,synthetic-phoenix))

# The qualitative grids of the README and docs/embedded-benchmark.md: source | target | copy-source | keypoint-warp | fpdm (| pidm | cfld |
# pocold on the DeepFashion-style set, the only one the tiny baselines were trained on), six pairs evenly
# spaced over each test split (deterministic), from the bench runs.
grids: install
	@set -e; for d in synthetic synthetic-phoenix; do \
	  models="fpdm"; if [ $$d = synthetic ]; then models="fpdm pidm cfld pocold"; fi; \
	  $(MAKE) --no-print-directory bench DATASET=$$d MODEL="$$models"; \
	  runs=""; for m in $$models; do runs="$$runs $(RUNS)/$$d/$$m"; done; \
	  $(BIN)/fpdm-bench grid $(RUNS)/$$d/copy-source $(RUNS)/$$d/keypoint-warp $$runs --rows 6 \
	    --out docs/grid-$$d.png --force; \
	done

# The checked-in example report (reports/example/): every model on the embedded default (the bench runs;
# finished runs are read, not rerun), a small robustness sweep, two profiles and the stage-1 ablation of the
# shipped tiny FPDM, all under $(RUNS)/; a profile or stage-1 evaluation already there is reused (timings
# differ between machines and runs, so the example keeps the ones it was made with until they are deleted).
report: install
	$(MAKE) --no-print-directory bench DATASET=synthetic PROTOCOL=standard MODEL="$(REPORT_MODELS)"
	$(BIN)/fpdm-bench sweep --model keypoint-warp,fpdm --dataset synthetic --perturb pose.jitter,source.occlusion \
	  --severities 0,2,4 --out $(RUNS)/sweep-synthetic --no-progress > /dev/null
	test -f $(PROFILES)/keypoint-warp.json || $(BIN)/fpdm-bench profile --model keypoint-warp \
	  --out $(PROFILES)/keypoint-warp.json > /dev/null
	test -f $(PROFILES)/fpdm.json || $(BIN)/fpdm-bench profile --model fpdm --batch-sizes 1,8 --steps 10,20 \
	  --out $(PROFILES)/fpdm.json > /dev/null
	test -f $(RUNS)/stage1-eval-synthetic/stage1_ranks.csv || $(BIN)/fpdm-bench eval stage1 \
	  --checkpoint $(TINY_DIR)/tiny/stage1 --dataset synthetic --out $(RUNS)/stage1-eval-synthetic > /dev/null
	$(BIN)/fpdm-bench report $$(for m in $$($(BIN)/fpdm-bench models --floors) $(REPORT_MODELS); do echo $(RUNS)/synthetic/$$m; done) \
	  $(RUNS)/sweep-synthetic \
	  $(PROFILES)/keypoint-warp.json $(PROFILES)/fpdm.json --stage1 $(RUNS)/stage1-eval-synthetic \
	  --baseline fpdm --rows 6 --k 3 --cell-height 96 --title "fpdm-bench example report (embedded synthetic data)" \
	  --out $(REPORT_OUT) --force
	@du -sh $(REPORT_OUT)

bench-scoring: install
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-enable -q

bench-kernels: install
	$(BIN)/python -m pytest benchmarks/test_bench_metric_kernels.py --benchmark-only --benchmark-enable -q

bench-runner: install
	$(BIN)/python -m pytest benchmarks/test_bench_runner.py --benchmark-only --benchmark-enable -q -s

clean:
	rm -rf $(RUNS) build dist *.egg-info .pytest_cache .benchmarks
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
