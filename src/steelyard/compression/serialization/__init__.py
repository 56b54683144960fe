"""How a compressed model is written to disk and read back, one job per module.

A saved folder is a ``save_pretrained`` folder (``config.json`` + ``model.safetensors``) plus
``steelyard_compression.json``, the manifest — or, when the config cannot describe the model, a
guarded folder (``steelyard_config.json`` + ``steelyard_weights.safetensors``, and a ``config.json``
that plain transformers refuses, see :mod:`.plain_hf`). The manifest says which methods ran, and
the structure that the config alone cannot describe —

* ``modules``: layers replaced by another kind (low-rank pairs, int8 / weight-only Linear), with
  their sizes;
* ``tensors``: shape and dtype of every saved tensor (pruned widths, float16 weights);
* ``attrs``: structural attributes of every module (``num_attention_heads``, ``in_features``...).

Modules:

* :mod:`.manifest` — the manifest's fields, written and read back (format and version checks);
* :mod:`.records` — what a model's structure looks like on disk (module records, tensor specs,
  structural attributes, a state dict of plain tensors);
* :mod:`.int8_dynamic` — torch's int8 dynamic Linear as plain tensors (codes, scales, zero
  points) instead of pickled packed weights, both ways;
* :mod:`.writer` — :func:`save_compressed`: the atomic folder (or ``.onnx`` file) write;
* :mod:`.rebuild` — replay the recorded structure on a freshly built model and load its weights;
* :mod:`.plain_hf` — whether plain transformers would rebuild the model; if not, the guard that
  makes it refuse the folder (the config moves to ``steelyard_config.json``);
* :mod:`.onnx_files` — example inputs for an ONNX Runtime session;
* :mod:`.loader` — :func:`load_compressed`: any saved folder or ``.onnx`` file back to a handle;
* :mod:`.sources` — the compressed-folder and ``.onnx`` loaders that ``load_model``'s registry
  (:mod:`steelyard.models.registry`) names lazily.

:mod:`steelyard.compression.saving` re-exports the public names.
"""
