"""Convert a Hugging Face Llama folder to GGUF with llama.cpp's own ``convert_hf_to_gguf.py``.

llama.cpp's converter ships in the llama-cpp-python sdist (``vendor/llama.cpp``), not in its wheel.
It is run unchanged except for two documented points, both about the tokenizer of
``benchmarks/train_small_llm.py`` (a byte-level BPE ``PreTrainedTokenizerFast``, no ``tokenizer.model``):

- ``LlamaModel.set_vocab`` tries SentencePiece first and falls back to the GPT-2 BPE path only on
  ``FileNotFoundError``; without the ``sentencepiece`` package the attempt raises ``ImportError``
  instead, so it is turned into the ``FileNotFoundError`` the converter would see with the package
  installed (there is no ``tokenizer.model`` either way).
- The BPE pre-tokenizer is recognised by hashing the tokens of a test string against a list of
  published models; our freshly trained tokenizer is on no such list. Its pre-tokenizer is
  ``ByteLevel(add_prefix_space=False)``, whose split regex is GPT-2's, so an unrecognised hash is
  registered as ``"gpt-2"`` (``tokenizer.ggml.pre``; llama.cpp's loader rejects ``"gpt2"``).
  Perplexity and decode speed feed token ids directly, so this only decides how llama.cpp would
  tokenize raw text.

    python benchmarks/gguf_convert.py SRC_DIR HF_FOLDER OUT.gguf --outtype f32

Runs in steelyard's own environment (it needs torch, numpy, transformers); the ``gguf`` package
comes from ``SRC_DIR/gguf-py``, the version the converter was written against. That converter (llama-cpp-python
0.3.36's) is older than the llama.cpp that reads its output in ``llamacpp_worker.py`` (llama-cpp-py-sync 0.11739,
commit 0ce8cd11); the GGUF format and the Llama tensor layout are stable across them, and ``llm_peers.py``'s
``conversion_check`` verifies each run (the F32 GGUF's greedy ids and NLL against the HF float32 model's).
"""

from __future__ import annotations

import sys
from pathlib import Path


def convert(src: Path, folder: Path, out: Path, outtype: str) -> None:
    """Run ``SRC/convert_hf_to_gguf.py FOLDER --outfile OUT --outtype OUTTYPE`` with the two tokenizer fixes."""
    sys.path.insert(0, str(src))
    sys.path.insert(1, str(src / "gguf-py"))
    import convert_hf_to_gguf
    from conversion import base

    def sentencepiece_or_missing(self):  # type: ignore[no-untyped-def]
        if not (self.dir_model / "tokenizer.model").is_file():
            raise FileNotFoundError(f"File not found: {self.dir_model / 'tokenizer.model'}")
        return original_sp(self)

    def pre_or_gpt2(self, tokenizer) -> str:  # type: ignore[no-untyped-def]
        try:
            return original_pre(self, tokenizer)
        except NotImplementedError:
            base.logger.warning("pre-tokenizer hash not on llama.cpp's list: registering the byte-level BPE as 'gpt-2'")
            return "gpt-2"

    original_sp, original_pre = base.TextModel._create_vocab_sentencepiece, base.TextModel.get_vocab_base_pre
    base.TextModel._create_vocab_sentencepiece = sentencepiece_or_missing
    base.TextModel.get_vocab_base_pre = pre_or_gpt2
    sys.argv = ["convert_hf_to_gguf.py", str(folder), "--outfile", str(out), "--outtype", outtype]
    convert_hf_to_gguf.main()


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="llama.cpp source folder holding convert_hf_to_gguf.py and gguf-py/")
    ap.add_argument("folder", type=Path, help="Hugging Face model folder")
    ap.add_argument("out", type=Path)
    ap.add_argument("--outtype", default="f32", choices=["f32", "f16", "bf16", "q8_0"])
    args = ap.parse_args()
    if not (args.src / "convert_hf_to_gguf.py").is_file():
        sys.exit(f"error: no convert_hf_to_gguf.py in {args.src}")
    convert(args.src, args.folder, args.out, args.outtype)


if __name__ == "__main__":
    main()
