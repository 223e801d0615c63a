# Two commands on a fresh machine:  make demo   and   make test
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
SHARED  ?= ../shared/data/dev

.PHONY: demo test install bench clean samples default-model

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, pinned to the local CPU wheel, so nothing later can pull a CUDA build.
$(STAMP): $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt
	# MTCNN weights (MIT). Its metadata pins an old torch + torchvision, so no deps.
	$(BIN)/pip install --quiet --no-deps facenet-pytorch==2.6.0
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Generated demo media (from scikit-image's photos) + a list that adds a few shared dev files when present.
samples/demo-inputs.txt: $(STAMP) src/fak3zer0/samples.py
	$(BIN)/python -m fak3zer0.samples --out samples --shared $(SHARED)

samples: samples/demo-inputs.txt

demo: samples/demo-inputs.txt
	$(BIN)/fak3zer0 detect --inputs-from samples/demo-inputs.txt --heatmap samples/heatmaps

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# Rebuild the shipped default model from ../shared/data/dev (configs/fak3zer0-default.recipe.yaml; 51 min
# on 2 CPU cores; resumable). Add ARGS=--ship to replace the packaged weights with the result.
default-model: $(STAMP)
	$(BIN)/python tools/reproduce_default.py $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/detect_speed.py

clean:
	rm -rf $(VENV) samples build *.egg-info src/*.egg-info
