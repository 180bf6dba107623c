# Two commands on a fresh machine: `make run` (set up + the main job) and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
SEEDS  ?= 10

.PHONY: venv run test test-slow test-system test-all docs docs-serve bench results results2 clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $@

run: venv  ## hard vs soft targets (T = 2), graddiff on the embedded digits dataset, $(SEEDS) seeds
	$(VENV)/bin/softtargets compare --dataset digits --mu_algo graddiff --seeds $(SEEDS) --temperature 2

test: venv  ## the fast default suite (a few minutes on 2 cores)
	$(PY) -m pytest -q -m "not slow and not system"

test-slow: venv  ## longer end-to-end tests
	$(PY) -m pytest -q -m "slow and not system" || [ $$? -eq 5 ]  # 5: none selected

test-system: venv  ## tests that start real external systems (skipped with a reason where unavailable)
	$(PY) -m pytest -q -rs -m "system" || [ $$? -eq 5 ]

test-all: test test-slow test-system

# NO_MKDOCS_2_WARNING: Material's banner about its end of life (docs/development.md says what it means here)
docs: venv  ## the documentation site in site/, strict: a broken link, anchor or missing page fails the build
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: venv  ## preview the site at http://127.0.0.1:8000, rebuilt when docs/, README.md or the code change
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

WORKERS ?= 2
STUDY    = runs/softtargets-study
results: venv  ## the published study, resumable (hours on 2 cores): runs/softtargets-study -> docs/results/
	$(VENV)/bin/softtargets --quiet sweep configs/sweeps/softtargets-study.yaml --workers $(WORKERS)
	if [ -d $(or $(DATA_ROOT),data)/MNIST ]; then \
	  $(VENV)/bin/softtargets --quiet sweep configs/sweeps/softtargets-study-mnist.yaml --workers $(WORKERS); fi
	$(VENV)/bin/softtargets --quiet sweep configs/sweeps/softtargets-study-fq.yaml --workers $(WORKERS)
	$(VENV)/bin/softtargets report $(STUDY) --out docs/results
	$(PY) -c "import json; from softtargets.report.study import machine_info; print(json.dumps(machine_info(), \
	  indent=1))" > docs/results/machine.json

STUDY2 = runs/softtargets-study2
STUDY2_ENV = ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
results2: venv  ## study 2, resumable, cheapest cells first, then its F audits and relearning attacks (days on 2 cores): runs/softtargets-study2 -> docs/results/study2/
	for only in "--only dataset=digits --only architecture=mlp" "--only dataset=digits --only architecture=cnn" \
	            "--only dataset=fashion_mnist --only architecture=mlp" "--only dataset=fashion_mnist --only architecture=cnn"; do \
	  $(STUDY2_ENV) $(VENV)/bin/softtargets --quiet sweep configs/sweeps/softtargets-study2.yaml --out $(STUDY2) \
	    --workers $(WORKERS) $$only || exit 1; done
	$(STUDY2_ENV) $(VENV)/bin/softtargets --quiet sweep configs/sweeps/softtargets-study2-fq.yaml --out $(STUDY2) \
	  --workers $(WORKERS)
	$(STUDY2_ENV) $(VENV)/bin/softtargets --quiet sweep configs/sweeps/softtargets-study2-relearn.yaml --out $(STUDY2) \
	  --workers $(WORKERS)
	$(STUDY2_ENV) $(VENV)/bin/softtargets report $(STUDY2) --out docs/results/study2
	$(STUDY2_ENV) $(PY) -c "import json; from softtargets.report.study import machine_info; print(json.dumps(machine_info(), \
	  indent=1))" > docs/results/study2/machine.json

bench: venv  ## benchmarks/results.json + docs/benchmarks.md (quiet machine; EPOCHS=10 is the original tool's run)
	$(PY) benchmarks/bench.py --epochs $(or $(EPOCHS),10)

clean:
	rm -rf $(VENV) runs .cache site *.egg-info
