"""The dtype table the extension exports, and the Python tables built from it."""
import numpy as np
import pytest

from fusedmetrics import _core, _dtypes

FAMILIES = {
    "logit": ["float16", "bfloat16", "float32", "float64"],
    "label": ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"],
    "scalar": ["float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64",
               "uint8", "uint16", "uint32", "uint64", "bool"],
}


def _numpy_itemsize(name):
    if name == "bfloat16":
        return 2  # numpy has no bfloat16; ml_dtypes' is 2 bytes
    return np.dtype(name).itemsize


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_table_names_the_expected_dtypes(family):
    assert sorted(_core.DTYPE_CODES[family]) == sorted(FAMILIES[family])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_itemsizes_match_numpy(family):
    for name, (_, itemsize) in _core.DTYPE_CODES[family].items():
        assert itemsize == _numpy_itemsize(name), name


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_codes_are_distinct_within_a_family(family):
    codes = [code for code, _ in _core.DTYPE_CODES[family].values()]
    assert len(set(codes)) == len(codes)
    assert sorted(codes) == list(range(len(codes)))


def test_python_tables_are_built_from_the_extension_table():
    assert _dtypes.LOGIT_CODES == {n: c for n, (c, _) in _core.DTYPE_CODES["logit"].items()}
    assert _dtypes.LABEL_CODES == {n: c for n, (c, _) in _core.DTYPE_CODES["label"].items()}
    assert _dtypes.BOOL_SCALAR_CODE == _core.DTYPE_CODES["scalar"]["bool"][0]
    for name, (code, _) in _core.DTYPE_CODES["scalar"].items():
        if name != "bfloat16":
            assert _dtypes.scalar_code(np.dtype(name)) == code


def test_lookups():
    assert _dtypes.logit_code(np.float32) == _dtypes.LOGIT_CODES["float32"]
    assert _dtypes.label_code(np.uint64) == _dtypes.LABEL_CODES["uint64"]
    assert _dtypes.label_code(np.bool_) is None
    assert _dtypes.logit_code(np.int32) is None
    assert _dtypes.scalar_code(np.complex64) is None
