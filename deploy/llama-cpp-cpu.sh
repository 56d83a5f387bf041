#!/bin/sh
# CPU recipe: llama.cpp's OpenAI-compatible server on a GGUF, then devloop against it.
#   deploy/llama-cpp-cpu.sh MODEL.gguf
# A portable build (this machine's AVX-512/AMX paths crash when a prompt is processed in batches):
#   cmake -B build -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
#   cmake --build build --target llama-server -j
# `--jinja` applies the model's own chat template and parses its tool calls into OpenAI tool_calls, which
# devloop's `native` format reads; the text formats (`--tool-format mistral|hermes|xml`) need no parser.
set -eu
MODEL=${1:?usage: llama-cpp-cpu.sh MODEL.gguf}
LLAMA_CPP=${LLAMA_CPP:-$HOME/llama.cpp}
"$LLAMA_CPP/build/bin/llama-server" --model "$MODEL" --jinja --ctx-size 32768 --host 127.0.0.1 --port 8080 &
SERVER=$!
trap 'kill $SERVER' EXIT
until curl -fsS http://127.0.0.1:8080/health >/dev/null 2>&1; do sleep 1; done
devloop gate tools --model openai/local --base-url http://127.0.0.1:8080/v1 --format native --format hermes \
    --out gates-out
