# A corpus of hostile inputs, generated here and fed to the real binary: damaged IDX
# (raw and .gz), HDF5 data of the wrong rank, type, shape or values, configuration
# files and flags with unknown keys, typos and absurd sizes, damaged or foreign
# checkpoints and metrics files, output directories that cannot be written and disks
# that fill mid-write. Each must end with a message naming the file or option and the
# problem, a non-zero exit (1 or 2, never a signal), and no file written earlier
# damaged. The inputs the fuzzers found (tests/fuzz/regressions) are replayed too.
source "$(dirname "$0")/lib/common.sh"
need_mnist
C=$WORK/corpus
mkdir -p "$C"
small=(--limit 200 --hidden 8 --batch-size 10 --k 1 --epochs 1 --filters false)
n_inputs=0 n_cases=0
PARALLEL=${RBM_E2E_PARALLEL:-4}   # cases at once: most of a case is MPI start-up latency

# refused "what" "pattern" cmd...: a distinct bad input. The command must fail with exit 1
# or 2 (a signal or a timeout is a crash or a hang), its output must match `pattern`
# (the file or option, and the problem), must not be a crash or an unexplained failure,
# and must leave no checkpoint behind. Each case runs in its own directory (cases run
# $PARALLEL at a time), so relative --out paths never collide; finish_cases reports.
refused() {
  n_inputs=$((n_inputs + 1))
  run_case "$@"
}
# again "what" "pattern" cmd...: the same input through another door (not counted again).
again() { run_case "$@"; }
run_case() {
  n_cases=$((n_cases + 1))
  local dir=$WORK/case.$(printf %04d $n_cases)
  mkdir -p "$dir"
  (cd "$dir" && check_case "$@") > "$dir.log" 2>&1 &
  while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do wait -n || true; done
}
check_case() {
  local what=$1 pattern=$2; shift 2
  local out rc=0
  out=$(timeout 60 "$@" 2>&1) || rc=$?
  case $rc in
    1|2) ;;
    0) fail "$what: exited 0, expected an error" ;;
    124) fail "$what: hung (stopped after 60 s)" ;;
    *) fail "$what: exit $rc (a crash?): $out" ;;
  esac
  if grep -qE "unexpected failure|terminate called|Segmentation|Sanitizer|runtime error:|core dumped|PMIX ERROR|bad_alloc" <<<"$out"; then
    fail "$what: a crash or an unexplained failure: $out"
  fi
  grep -qiE -- "$pattern" <<<"$out" || fail "$what: message '$out' does not match /$pattern/"
  if compgen -G "x/checkpoints/*.h5" > /dev/null; then fail "$what: a checkpoint was written"; fi
  echo "ok: $what -> $(grep -a -m1 'error' <<<"$out" | cut -c1-300 || true)"
}
finish_cases() {  # waits for the cases started so far; fails if any did
  wait
  echo "-- $n_inputs bad inputs so far, $SECONDS s"
  cat "$WORK"/case.*.log
  if grep -q "^FAIL" "$WORK"/case.*.log; then fail "$(grep -c '^FAIL' "$WORK"/case.*.log | grep -vc ':0$') case(s) failed"; fi
  rm -f "$WORK"/case.*.log
}

# A run that must survive every refusal below untouched.
GOOD=$WORK/good
"$RBM" train --data "$MNIST" "${small[@]}" --checkpoint-every 5 --out "$GOOD" > /dev/null
snapshot() { (cd "$GOOD" && find . -type f | sort | xargs sha256sum); }
good_before=$(snapshot)
good_ckpt=$(newest_checkpoint "$GOOD")

echo "== generating the corpus"
$PY - "$C" "$MNIST" "$good_ckpt" <<'PYEOF'
import gzip, os, shutil, struct, sys
import h5py, numpy as np
C, mnist, ckpt = sys.argv[1:4]
os.makedirs(f"{C}/dir.idx")
raw = open(mnist, "rb").read(16 + 100 * 784)
pixels = raw[16:]
def idx(magic, dims, payload=b""):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload
def put(name, data, gz=False):
    open(f"{C}/{name}", "wb").write(gzip.compress(data) if gz else data)
good = idx(0x803, [100, 28, 28], pixels)
put("good.idx", good)
# raw IDX
put("empty.idx", b"")
put("short3.idx", b"\x00\x00\x08")
put("text.idx", b"this is not an idx file, just text\n" * 3)
put("highbytes.idx", idx(0x12340803, [100, 28, 28], pixels))
put("float32.idx", idx(0x00000D03, [100, 28, 28], pixels * 4))
put("int32.idx", idx(0x00000C03, [100, 28, 28], pixels * 4))
put("labels.idx", idx(0x801, [100], bytes(range(100))))
put("bin01.idx", idx(0x803, [100, 28, 28], bytes(b > 127 for b in pixels)))   # binarised pixels as bytes
put("rank0.idx", idx(0x800, []))
put("rank4.idx", idx(0x804, [100, 28, 28, 1], pixels))
put("header_cut.idx", idx(0x803, [100]))
put("data_cut.idx", idx(0x803, [100, 28, 28], pixels[: 50 * 784]))
put("trailing.idx", good + b"\0" * 10)
put("zero_rows.idx", idx(0x803, [0, 28, 28]))
put("zero_cols.idx", idx(0x803, [100, 0, 28]))
put("overflow.idx", idx(0x803, [0xFFFFFFFF] * 3, pixels[:784]))
put("huge.idx", idx(0x803, [0xFFFFFFFF, 28, 28], pixels[: 10 * 784]))
put("flat_cut.idx", idx(0x802, [100, 784], pixels[:-1]))
# gzip IDX
put("gz_text.idx.gz", b"not an idx file inside a gzip stream", gz=True)
put("gz_data_cut.idx.gz", idx(0x803, [100, 28, 28], pixels[: 99 * 784]), gz=True)
put("gz_trailing.idx.gz", good + b"\1" * 100, gz=True)
put("gz_overflow.idx.gz", idx(0x803, [0xFFFFFFFF] * 3), gz=True)
put("gz_huge.idx.gz", idx(0x803, [0xFFFFFFFF, 28, 28], pixels[: 10 * 784]), gz=True)
put("gz_empty.idx.gz", b"", gz=True)
z = gzip.compress(good)
put("gz_magic_only.idx.gz", z[:2])
put("gz_header_only.idx.gz", z[:10])
put("gz_truncated.idx.gz", z[: len(z) * 6 // 10])
put("gz_no_trailer.idx.gz", z[:-8])
g = bytearray(z); g[len(g) // 2] ^= 0xFF; g[len(g) // 2 + 1] ^= 0x55
put("gz_garbled.idx.gz", bytes(g))
g = bytearray(z); g[-6] ^= 0x01   # the CRC of the data
put("gz_bad_crc.idx.gz", bytes(g))
# HDF5 data
rng = np.random.default_rng(1)
x = rng.random((100, 784)).astype(np.float32)
with h5py.File(f"{C}/data.h5", "w") as f:
    f["good"] = x
    f["rank1"] = x[0]
    f["rank4"] = x.reshape(100, 28, 28, 1)
    f["scalar"] = np.float32(0.5)
    f["int16"] = (x * 255).astype(np.int16)
    f["bin01"] = (x > 0.5).astype(np.uint8)
    f["int8"] = (x * 100).astype(np.int8)
    f["uint16"] = (x * 255).astype(np.uint16)
    f["float16"] = x.astype(np.float16)
    f["strings"] = np.full((100, 784), b"a", dtype="S1")
    f["compound"] = np.zeros((100, 784), dtype=[("a", "f4"), ("b", "f4")])
    f["bool"] = x > 0.5
    f.create_dataset("vlen", (100, 784), dtype=h5py.vlen_dtype(np.float32))
    for name, row, col, v, t in [("nan", 42, 7, np.nan, np.float32), ("inf", 3, 700, np.inf, np.float64),
                                 ("neginf", 99, 0, -np.inf, np.float32), ("above1", 10, 10, 1.5, np.float32),
                                 ("below0", 0, 5, -0.1, np.float64)]:
        y = x.astype(t); y[row, col] = v; f[name] = y
    f.create_dataset("empty_rows", (0, 784), dtype=np.float32)
    f.create_dataset("empty_cols", (100, 0), dtype=np.float32)
    f["small"] = (x[:15] * 255).astype(np.uint8)
    f["cols64"] = x[:, :64]
    f.create_dataset("huge", (2**40, 784), dtype=np.float32, chunks=(64, 784))
    f.create_dataset("overflow", (2**32, 2**32, 2**32), dtype=np.uint8, chunks=(1, 1, 1024))
    f.create_group("group")["inside"] = x
    f["dangling"] = h5py.SoftLink("/nowhere")
    f["external"] = h5py.ExternalLink("missing.h5", "/x")
blob = open(f"{C}/data.h5", "rb").read()
put("h5_truncated.h5", blob[: len(blob) // 2])
put("h5_empty.h5", b"")
put("h5_text.h5", b"plain text, not HDF5\n")
g = bytearray(blob); g[0:8] = b"\x00" * 8
put("h5_no_signature.h5", bytes(g))
# configuration files
cfgs = {
    "typo.ini": "hidden = 8\nlearning-rate = 0.1\n",
    "section.ini": "[train]\nhidden = 8\n",
    "no_equals.ini": "hidden\n",
    "duplicate.ini": "hidden = 8\nhidden = 9\n",
    "zero_hidden.ini": "hidden = 0\n",
    "negative_batch.ini": "batch-size = -20\n",
    "absurd_hidden.ini": "hidden = 99999999999\n",
    "float_epochs.ini": "epochs = 1.5\n",
    "empty_lr.ini": "lr =\n",
    "nan_lr.ini": "lr = nan\n",
    "overflow_lr.ini": "lr = 1e400\n",
    "hex_hidden.ini": "hidden = 0x10\n",
    "two_values.ini": "hidden = 1 2\n",
    "bad_bool.ini": "filters = maybe\n",
    "bad_method.ini": "method = PCD\n",
    "empty_out.ini": "out =\n",
    "bom.ini": "\ufeffhidden = 8\n",
    "nul.ini": "hidden = 8\0 00\n",
}
for name, text in cfgs.items():
    open(f"{C}/{name}", "w", encoding="utf-8").write(text)
put("binary.ini", bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
os.makedirs(f"{C}/dir.ini")
# checkpoints: a good one, altered one way each
def variant(name, change):
    path = f"{C}/ck_{name}.h5"
    shutil.copy(ckpt, path)
    with h5py.File(path, "r+") as f:
        change(f)
def replace(f, name, value):
    del f[name]
    f[name] = value
W = h5py.File(ckpt, "r")["model/W"][:]
variant("version2", lambda f: f.attrs.__setitem__("format_version", np.int64(2)))
variant("kind_metrics", lambda f: f.attrs.__setitem__("rbm_file_kind", "metrics"))
variant("no_kind", lambda f: f.attrs.__delitem__("rbm_file_kind"))
variant("W_shape", lambda f: replace(f, "model/W", np.zeros((784, 9), np.float32)))
variant("W_strings", lambda f: replace(f, "model/W", np.full(W.shape, b"x", dtype="S1")))
variant("W_nan", lambda f: f["model/W"].__setitem__((3, 4), np.nan))
variant("velocity_inf", lambda f: f["optimizer/velocity_hbias"].__setitem__(0, np.inf))
variant("chains_rank", lambda f: f["chains/rank"].__setitem__(0, 5))
variant("chains_value", lambda f: f["chains/hidden"].__setitem__((0, 0), 7))
variant("chains_shape", lambda f: replace(f, "chains/hidden", np.zeros((10, 9), np.uint8)))
variant("no_state", lambda f: f.__delitem__("state"))
variant("no_model", lambda f: f.__delitem__("model"))
variant("step_string", lambda f: f["state"].attrs.__setitem__("step", "ten"))
variant("step_negative", lambda f: f["state"].attrs.__setitem__("step", np.int64(-5)))
variant("world_zero", lambda f: f["state"].attrs.__setitem__("world_size", np.uint64(0)))
variant("n_visible_zero", lambda f: f["model"].attrs.__setitem__("n_visible", np.uint64(0)))
def attrs_say(f, nv, nh):
    f["model"].attrs["n_visible"] = np.uint64(nv)
    f["model"].attrs["n_hidden"] = np.uint64(nh)
variant("attrs_huge", lambda f: attrs_say(f, 50000, 50000))   # W is still 784 x 8: nothing allocated by them
def huge_model(f):   # a W of 10^12 floats that was never written (a few KiB of file)
    del f["model/W"]
    f["model"].create_dataset("W", shape=(1000000, 1000000), dtype="f4", chunks=(1000, 1000))
    attrs_say(f, 1000000, 1000000)
variant("W_huge", huge_model)
variant("no_config", lambda f: f.__delitem__("config"))
variant("step_in_epoch", lambda f: f["state"].attrs.__setitem__("step_in_epoch", np.uint64(999)))
variant("metric_sums_nan", lambda f: f["state/epoch_metric_sums"].__setitem__(0, np.nan))
def ini_set(f, text):
    f["config"].attrs["ini"] = np.bytes_(text)
ini = h5py.File(ckpt, "r")["config"].attrs["ini"].decode()
variant("config_unknown", lambda f: ini_set(f, ini + "bogus-key = 1\n"))
variant("config_hidden", lambda f: ini_set(f, ini.replace("hidden = 8", "hidden = 12")))
variant("config_empty", lambda f: ini_set(f, ""))
blob = open(ckpt, "rb").read()
put("ck_truncated.h5", blob[: len(blob) // 2])
put("ck_tail_cut.h5", blob[:-100])
with h5py.File(ckpt, "r") as f:
    w_at = f["model/W"].id.get_chunk_info(0).byte_offset
    group_at = h5py.h5o.get_info(f["model"].id).addr
g = bytearray(blob); g[w_at + 40] ^= 0xFF
put("ck_garbled_W.h5", bytes(g))
g = bytearray(blob); g[group_at + 12] ^= 0xFF
put("ck_garbled_header.h5", bytes(g))
PYEOF

echo "== IDX data, raw"
bad_data() {  # bad_data "what" "pattern" SPEC: a fresh run refuses it, and writes no checkpoint
  local what=$1 pattern=$2 spec=$3
  refused "$what" "$pattern" "$RBM" train --data "$spec" "${small[@]}" --out x
}
bad_data_r() {  # ... and so does the good run resumed with it (data may change on resume)
  bad_data "$@"
  again "$1 (resuming the good run)" "$2" "$RBM" train --resume --out "$GOOD" --data "$3"
}
bad_data "empty IDX" "empty.idx.*too short" "$C/empty.idx"
bad_data "3-byte IDX" "short3.idx.*too short" "$C/short3.idx"
bad_data_r "text as IDX" "text.idx.*wrong magic" "$C/text.idx"
bad_data "magic with high bytes" "highbytes.idx.*wrong magic.*0x12340803" "$C/highbytes.idx"
bad_data "float32 IDX" "float32.idx.*unsupported IDX element type 0x0d" "$C/float32.idx"
bad_data "int32 IDX" "int32.idx.*unsupported IDX element type 0x0c" "$C/int32.idx"
bad_data "a label file as data" "labels.idx.*wrong magic.*expected IDX images" "$C/labels.idx"
bad_data "0/1 pixels stored as IDX bytes" "bin01.idx': every byte is 0 or 1" "$C/bin01.idx"
bad_data "0/1 pixels stored as HDF5 uint8" "data.h5:/bin01': every byte is 0 or 1" "$C/data.h5:/bin01"
bad_data "rank-0 IDX" "rank0.idx.*wrong magic" "$C/rank0.idx"
bad_data "an HDF5 file without its dataset" "for a dataset in the HDF5 file '.*data.h5' name it from the root" "$C/data.h5:"
bad_data "a dataset path without its '/'" "for a dataset in the HDF5 file '.*data.h5' name it from the root" "$C/data.h5:bin01"
bad_data "rank-4 IDX" "rank4.idx.*wrong magic" "$C/rank4.idx"
bad_data "header cut short" "header_cut.idx.*header ends early" "$C/header_cut.idx"
bad_data_r "data cut short" "data_cut.idx.*truncated" "$C/data_cut.idx"
bad_data "2-D IDX one byte short" "flat_cut.idx.*truncated" "$C/flat_cut.idx"
bad_data "bytes after the data" "trailing.idx.*disagree with the file size" "$C/trailing.idx"
bad_data "zero images" "zero_rows.idx.*empty" "$C/zero_rows.idx"
bad_data "zero-width images" "zero_cols.idx.*empty" "$C/zero_cols.idx"
bad_data "dimensions overflowing" "overflow.idx.*overflow" "$C/overflow.idx"
bad_data "4 billion images claimed" "huge.idx.*truncated" "$C/huge.idx"
bad_data "HDF5 file without a dataset" "data.h5.*HDF5 file: name the dataset" "$C/data.h5"
bad_data "a directory" "dir.idx.*directory" "$C/dir.idx"
bad_data "a missing file" "missing.idx.*no such file" "$C/missing.idx"
echo "== IDX data, gzip"
bad_data "gzip of text" "gz_text.idx.gz.*wrong magic" "$C/gz_text.idx.gz"
bad_data "gzip of a cut IDX" "gz_data_cut.idx.gz.*truncated" "$C/gz_data_cut.idx.gz"
bad_data "gzip with bytes after the data" "gz_trailing.idx.gz.*disagree" "$C/gz_trailing.idx.gz"
bad_data "gzip of overflowing dims" "gz_overflow.idx.gz.*overflow" "$C/gz_overflow.idx.gz"
bad_data "gzip claiming 4 billion images (--limit 200)" "gz_huge.idx.gz.*truncated" "$C/gz_huge.idx.gz"
refused "gzip claiming 4 billion images (all rows)" "gz_huge.idx.gz.*GiB.*more than this machine" \
  "$RBM" train --data "$C/gz_huge.idx.gz" --hidden 8 --out x
bad_data "gzip of nothing" "gz_empty.idx.gz.*too short" "$C/gz_empty.idx.gz"
bad_data "gzip magic alone" "gz_magic_only.idx.gz.*(truncated|too short|corrupt)" "$C/gz_magic_only.idx.gz"
bad_data "gzip header alone" "gz_header_only.idx.gz.*(truncated|too short|corrupt)" "$C/gz_header_only.idx.gz"
bad_data_r "gzip cut at 60%" "gz_truncated.idx.gz.*truncated" "$C/gz_truncated.idx.gz"
bad_data "gzip without its trailer" "gz_no_trailer.idx.gz.*(truncated|corrupt)" "$C/gz_no_trailer.idx.gz"
bad_data "gzip garbled" "gz_garbled.idx.gz.*(corrupt|truncated|magic|disagree)" "$C/gz_garbled.idx.gz"
bad_data_r "gzip with a wrong CRC" "gz_bad_crc.idx.gz.*corrupt" "$C/gz_bad_crc.idx.gz"
refused "bad --test-data" "test-data|data_cut.idx.*truncated" \
  "$RBM" train --data "$MNIST" --test-data "$C/data_cut.idx" "${small[@]}" --out x
refused "--test-data of another width" "cols64.*64 values per example" \
  "$RBM" train --data "$MNIST" --test-data "$C/data.h5:/cols64" "${small[@]}" --out x

finish_cases

echo "== HDF5 data"
bad_data_r "1-D dataset" "data.h5:/rank1.*wrong rank" "$C/data.h5:/rank1"
bad_data "4-D dataset" "data.h5:/rank4.*wrong rank" "$C/data.h5:/rank4"
bad_data "scalar dataset" "data.h5:/scalar.*wrong rank" "$C/data.h5:/scalar"
bad_data_r "int16 data" "data.h5:/int16.*unsupported type 16-bit signed integer" "$C/data.h5:/int16"
bad_data "int8 data" "data.h5:/int8.*unsupported type 8-bit signed" "$C/data.h5:/int8"
bad_data "uint16 data" "data.h5:/uint16.*unsupported type 16-bit unsigned" "$C/data.h5:/uint16"
bad_data "float16 data" "data.h5:/float16.*unsupported type 16-bit float" "$C/data.h5:/float16"
bad_data "string data" "data.h5:/strings.*unsupported type string" "$C/data.h5:/strings"
bad_data "compound data" "data.h5:/compound.*unsupported type compound" "$C/data.h5:/compound"
bad_data "boolean (enum) data" "data.h5:/bool.*unsupported type enum" "$C/data.h5:/bool"
bad_data "variable-length data" "data.h5:/vlen.*unsupported type variable-length" "$C/data.h5:/vlen"
bad_data_r "NaN" "data.h5:/nan.*NaN at row 42, column 7" "$C/data.h5:/nan"
bad_data "Inf (float64)" "data.h5:/inf.*Inf at row 3, column 700" "$C/data.h5:/inf"
bad_data "-Inf" "data.h5:/neginf.*Inf at row 99, column 0" "$C/data.h5:/neginf"
bad_data_r "a value above 1" "data.h5:/above1.*value 1.5 at row 10, column 10.*outside \[0, 1\]" "$C/data.h5:/above1"
bad_data "a value below 0" "data.h5:/below0.*value -0.1 at row 0, column 5.*outside" "$C/data.h5:/below0"
bad_data "no rows" "data.h5:/empty_rows.*empty: 0 rows" "$C/data.h5:/empty_rows"
bad_data "no columns" "data.h5:/empty_cols.*empty: 100 rows of 0" "$C/data.h5:/empty_cols"
refused "2^40 rows" "data.h5:/huge.*GiB.*more than this machine" "$RBM" train --data "$C/data.h5:/huge" --out x
bad_data "dimensions overflowing" "data.h5:/overflow.*overflow" "$C/data.h5:/overflow"
bad_data "a group, not a dataset" "data.h5:/group.*is not a dataset \(it is a group\)" "$C/data.h5:/group"
bad_data_r "no such dataset" "data.h5:/nothing.*no such dataset" "$C/data.h5:/nothing"
bad_data "a dangling soft link" "data.h5:/dangling.*no such dataset" "$C/data.h5:/dangling"
bad_data "an external link to a missing file" "data.h5:/external.*no such dataset" "$C/data.h5:/external"
bad_data_r "truncated HDF5" "h5_truncated.h5.*(truncated|damaged)" "$C/h5_truncated.h5:/good"
bad_data "empty HDF5" "h5_empty.h5.*empty" "$C/h5_empty.h5:/good"
bad_data "text as HDF5" "h5_text.h5.*not an HDF5 file" "$C/h5_text.h5:/good"
bad_data "HDF5 without its signature" "h5_no_signature.h5.*not an HDF5 file" "$C/h5_no_signature.h5:/good"
bad_data "missing HDF5 file" "nofile.h5.*no such file" "$C/nofile.h5:/good"
refused "batch larger than the data" "batch-size 20 is larger than a rank's share.*15 of 15 rows" \
  "$RBM" train --data "$C/data.h5:/small" --hidden 4 --out x
refused "a checkpoint of another shape" "holds a 64x8 model.*784 values per example" \
  bash -c "'$RBM' train --data '$C/data.h5:/cols64' --limit 100 --hidden 8 --batch-size 10 --k 1 --epochs 1 \
             --filters false --out '$WORK/r64' > /dev/null && '$RBM' train --resume --out '$WORK/r64' --data '$MNIST'"

finish_cases
grep -q "^data = $C/data.h5:/cols64$" "$WORK/r64/config.ini" || fail "a refused resume rewrote the run's config.ini"

echo "== flags and configuration files"
flag() { refused "$1" "$2" "$RBM" train --data "$MNIST" --limit 200 "${@:3}"; }
flag "--hidden 0" "--hidden must be a whole number from 1" --hidden 0 --out x
flag "--hidden -1" "--hidden must be a whole number" --hidden -1 --out x
flag "--hidden above the limit" "--hidden must be a whole number from 1 to 16777216" --hidden 16777217 --out x
flag "--hidden out of range of 64 bits" "--hidden must be a whole number" --hidden 99999999999999999999999 --out x
flag "--hidden empty" "--hidden must be a whole number" --hidden "" --out x
flag "--hidden 3000000 (memory)" "--hidden 3000000 asks for more memory" --hidden 3000000 --out x
flag "--chains 2^24 (memory)" "--chains 16777216 needs about .* GiB per rank, more than this machine" --chains 16777216 --out x
flag "--batch-size 1.5" "--batch-size must be a whole number" --batch-size 1.5 --out x
flag "--batch-size 2^24" "batch-size 16777216 (is larger|.*needs about .* GiB)" --batch-size 16777216 --out x
flag "--k 0" "--k must be a whole number from 1" --k 0 --out x
flag "--epochs 0" "--epochs must be a whole number from 1" --epochs 0 --out x
flag "--lr 0" "--lr must be a number from" --lr 0 --out x
flag "--lr -0.1" "--lr must be a number" --lr -0.1 --out x
flag "--lr 1e7" "--lr must be a number from .* to 1e\+06" --lr 1e7 --out x
flag "--lr inf" "--lr must be a number" --lr inf --out x
flag "--momentum 1" "--momentum must be a number from 0 to" --momentum 1 --out x
flag "--weight-decay -1" "--weight-decay must be a number" --weight-decay -1 --out x
flag "--validation-fraction 1" "--validation-fraction must be a number from 0 to 0.99" --validation-fraction 1 --out x
flag "--validation-fraction with --test-data" "either --test-data or --validation-fraction" \
  --validation-fraction 0.1 --test-data "$MNIST_TEST" --out x
flag "--method CD" "method must be cd, pcd or pt, got 'CD'" --method CD --out x
flag "--binarize yes" "binarize must be none, threshold, stochastic or dynamic" --binarize yes --out x
flag "--binarize-threshold 2" "--binarize-threshold must be a number from 0 to 1" --binarize-threshold 2 --out x
flag "--seed -1" "--seed must be a whole number" --seed -1 --out x
flag "--seed 2^32" "--seed must be a whole number from 0 to 4294967295" --seed 4294967296 --out x
flag "--threads 5000" "--threads must be a whole number from 0 to 1024" --threads 5000 --out x
flag "--chains with cd" "--chains applies to pcd and pt only" --method cd --chains 5 --out x
flag "--checkpoint-every -1" "--checkpoint-every must be a whole number" --checkpoint-every -1 --out x
flag "--monitor-examples 0" "--monitor-examples must be a whole number from 1" --monitor-examples 0 --out x
flag "--filters maybe" "--filters must be true or false" --filters maybe --out x
flag "--out empty" "--out must name a run directory" --out ""
flag "unknown flag" "unrecognised option|unknown option" --learning-rate 0.1 --out x
flag "flag without its value" "--out.*(argument|missing)" --out
refused "--data empty" "--data is required" "$RBM" train --data "" --out x
for ini in typo:"typo.ini.*learning-rate" section:"section.ini.*train.hidden" no_equals:"no_equals.ini" \
           duplicate:"duplicate.ini.*more than once" zero_hidden:"zero_hidden.ini.*--hidden must be a whole number from 1" \
           negative_batch:"negative_batch.ini.*--batch-size must be a whole number" \
           absurd_hidden:"absurd_hidden.ini.*--hidden must be a whole number" \
           float_epochs:"float_epochs.ini.*--epochs must be a whole number" empty_lr:"empty_lr.ini.*--lr" \
           nan_lr:"nan_lr.ini.*--lr must be a number" overflow_lr:"overflow_lr.ini.*--lr must be a number" \
           hex_hidden:"hex_hidden.ini.*--hidden must be a whole number" two_values:"two_values.ini.*--hidden" \
           bad_bool:"bad_bool.ini.*--filters must be true or false" bad_method:"bad_method.ini.*cd, pcd or pt" \
           bom:"bom.ini" binary:"binary.ini" nul:"nul.ini: holds a NUL byte" \
           dir:"dir.ini.*it is a directory" missing:"missing.ini"; do
  name=${ini%%:*}
  refused "config $name.ini" "${ini#*:}" "$RBM" train --data "$MNIST" --limit 200 --epochs 1 --config "$C/$name.ini" --out x
done
printf 'out =\n' > "$C/empty_out.ini"
refused "config empty_out.ini" "--out must name a run directory" "$RBM" train --data "$MNIST" --config "$C/empty_out.ini"

finish_cases

echo "== checkpoints"
for v in version2:"format version 2, this rbm reads 1" kind_metrics:"(is an rbm metrics file, not a checkpoint|has no /metrics dataset)" \
         no_kind:"not an rbm (checkpoint )?file" W_shape:"model/W has shape \[784, 9\], but the model's attributes say 784 x 8" \
         attrs_huge:"model/W has shape \[784, 8\], but the model's attributes say 50000 x 50000" \
         W_huge:"a 1000000 x 1000000 model needs [0-9.e+]+ GiB, more than this machine's memory" \
         W_strings:"'/model/W' is not numeric" W_nan:"model/W holds -?nan at element" \
         velocity_inf:"optimizer/velocity_hbias holds inf at element 0" \
         chains_rank:"chains/rank holds rank 5 but world_size is 1" chains_value:"chains/hidden holds 7" \
         chains_shape:"chains/hidden must be \[n_chains, 8\]" no_state:"has no group 'state'" \
         no_model:"has no group 'model'" step_string:"attribute 'step' is not an integer" \
         step_negative:"attribute 'step' is negative" world_zero:"world_size is 0" \
         n_visible_zero:"model has 0 visible" no_config:"has no group 'config'" \
         step_in_epoch:"state says step 999 of an epoch of" metric_sums_nan:"epoch_metric_sums holds -?nan" \
         truncated:"truncated" tail_cut:"truncated" garbled_W:"cannot read dataset '/model/W'" \
         garbled_header:"damaged|cannot|checksum"; do
  name=${v%%:*} pattern="ck_$name.h5.*${v#*:}"
  refused "checkpoint $name (info)" "$pattern" "$RBM" info "$C/ck_$name.h5"
  again "checkpoint $name (sample)" "$pattern" "$RBM" sample --checkpoint "$C/ck_$name.h5" --out s.h5
done
resume_with() {  # resume_with refused|again NAME PATTERN: a run whose newest checkpoint is ck_NAME.h5 refuses to resume
  local dir=$WORK/resume_$2
  cp -r "$GOOD" "$dir"
  cp "$C/ck_$2.h5" "$dir/checkpoints/step-9999999999.h5"
  "$1" "resuming from checkpoint $2" "$3" "$RBM" train --resume --out "$dir"
}
resume_with again W_nan "step-9999999999.h5.*model/W holds -?nan"
resume_with again truncated "step-9999999999.h5.*truncated"
resume_with refused config_unknown "step-9999999999.h5.*bogus-key"
resume_with refused config_hidden "holds a 784x8 model.*--hidden 12"
resume_with refused config_empty "step-9999999999.h5: its stored configuration.*names no data"
mkfifo "$WORK/fifo"
refused "info on a FIFO (no hang)" "fifo.*not a regular file" "$RBM" info "$WORK/fifo"
refused "IDX data from a FIFO (no hang)" "fifo.*not a regular file" "$RBM" train --data "$WORK/fifo" "${small[@]}" --out x
again "HDF5 data from a FIFO (no hang)" "fifo.*not a regular file" "$RBM" train --data "$WORK/fifo:/x" "${small[@]}" --out x
printf '' > "$WORK/empty.h5"
refused "an empty checkpoint" "empty.h5.*empty" "$RBM" info "$WORK/empty.h5"
refused "info on a directory" "$C/dir.ini.*directory" "$RBM" info "$C/dir.ini"
refused "info on data, not an rbm file" "data.h5.*not an rbm" "$RBM" info "$C/data.h5"
refused "info on IDX" "good.idx.*not an HDF5 file" "$RBM" info "$C/good.idx"
refused "info on a missing file" "nothing.h5.*no such file" "$RBM" info "$C/nothing.h5"

finish_cases

echo "== sampling"
smp() { refused "$1" "$2" "$RBM" sample --checkpoint "$good_ckpt" "${@:3}"; }
smp "sample --chains 0" "--chains must be a whole number from 1" --chains 0 --out s.h5
smp "sample --samples 0" "--samples must be a whole number from 1" --samples 0 --out s.h5
smp "sample --plot-every 0" "--plot-every must be a whole number from 1" --plot-every 0 --out s.h5
smp "sample memory that cannot be had" "--samples 1048576 x --chains 1048576.*more than this machine" \
  --chains 1048576 --samples 1048576 --out s.h5
smp "sample from data of another width" "cols64 has 64 values per example, the model 784" \
  --data "$C/data.h5:/cols64" --out s.h5
smp "sample more chains than examples" "small has 15 examples, fewer than --chains 20" \
  --data "$C/data.h5:/small" --out s.h5
smp "sample from bad data" "data.h5:/nan.*NaN" --data "$C/data.h5:/nan" --out s.h5
smp "sample into a missing directory" "--out .*nodir/s.h5: its directory .*nodir. does not exist" --plot-every 1 --out "$WORK/nodir/s.h5"
smp "sample onto a directory" "dir.ini' exists and is not a file" --plot-every 1 --out "$C/dir.ini"
smp "sample onto its own checkpoint" "step-[0-9]*.h5' exists and is an rbm checkpoint file" --out "$good_ckpt"
smp "sample onto the run's metrics" "metrics.h5' exists and is an rbm metrics file" --out "$GOOD/metrics.h5"
smp "sample onto a file rbm did not write" "text.idx' exists and is not an HDF5 file" --out "$C/text.idx"
smp "sample onto another program's HDF5 file" "data.h5' exists and is an HDF5 file rbm did not write" --out "$C/data.h5"
smp "sample --out named .png" "the sample grid is written beside it as .png" --out s.png
smp "sample --out empty" "--out must name the samples file" --out ""
echo "my picture" > "$WORK/mine.png"
smp "sample beside a picture of someone else's" "mine.png' exists beside no samples file" --out "$WORK/mine.h5"

finish_cases
grep -q "^my picture$" "$WORK/mine.png" || fail "rbm sample replaced a picture it did not draw"

echo "== run directories that cannot be written"
touch "$WORK/a_file"
refused "--out under a regular file" "a_file/run.*Not a directory" \
  "$RBM" train --data "$MNIST" "${small[@]}" --out "$WORK/a_file/run"
refused "--out in /proc" "/proc/rbm-run.*(No such file|Permission|not permitted)" \
  "$RBM" train --data "$MNIST" "${small[@]}" --out /proc/rbm-run
mkdir -p "$WORK/ckfile" && touch "$WORK/ckfile/checkpoints"
refused "checkpoints/ is a file" "ckfile/checkpoints' exists and is not a directory" \
  "$RBM" train --data "$MNIST" "${small[@]}" --out "$WORK/ckfile"
mkdir -p "$WORK/fifile" && touch "$WORK/fifile/filters"
refused "filters/ is a file (refused before training)" "fifile/filters' exists and is not a directory" \
  "$RBM" train --data "$MNIST" --limit 200 --hidden 8 --batch-size 10 --k 1 --epochs 1 --out "$WORK/fifile"
refused "--out is a file" "a_file' exists and is not a directory" \
  "$RBM" train --data "$MNIST" "${small[@]}" --out "$WORK/a_file"
ln -s "$WORK/nowhere" "$WORK/dangling"
refused "--out is a dangling symbolic link" "dangling' is a symbolic link to '.*nowhere', which does not exist" \
  "$RBM" train --data "$MNIST" "${small[@]}" --out "$WORK/dangling"
mkdir -p "$WORK/mdir/metrics.h5"
refused "metrics.h5 is a directory" "mdir/metrics.h5.*is a directory" \
  "$RBM" train --data "$MNIST" "${small[@]}" --out "$WORK/mdir"
cp -r "$GOOD" "$WORK/mjunk" && echo junk > "$WORK/mjunk/metrics.h5"
refused "resume with metrics.h5 garbage" "mjunk/metrics.h5.*not an HDF5 file" "$RBM" train --resume --out "$WORK/mjunk"
cp -r "$GOOD" "$WORK/mkind" && cp "$good_ckpt" "$WORK/mkind/metrics.h5"
refused "resume with a checkpoint as metrics.h5" "mkind/metrics.h5.*is an rbm checkpoint file, not a metrics file" \
  "$RBM" train --resume --out "$WORK/mkind"
if command -v setpriv > /dev/null && [ "$(id -u)" = 0 ]; then  # becoming nobody needs root
  chmod 755 "$WORK" && mkdir -p "$WORK/locked" && chmod 555 "$WORK/locked"
  # The binary and the data, where nobody can reach them whatever the checkout's place
  # (a clone under /root, mode 700, is not).
  install -m 755 "$RBM" "$WORK/rbm-for-nobody"
  { printf '\x00\x00\x08\x03\x00\x00\x00\xc8\x00\x00\x00\x1c\x00\x00\x00\x1c'
    head -c $((16 + 200 * 784)) "$MNIST" | tail -c $((200 * 784)); } > "$WORK/200.idx"
  chmod 644 "$WORK/200.idx"
  refused "--out in a directory without write permission (as nobody)" "locked/run.*Permission denied" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$WORK/rbm-for-nobody" train --data "$WORK/200.idx" \
    "${small[@]}" --out "$WORK/locked/run"
  mkdir -p "$WORK/private" && cp "$WORK/200.idx" "$WORK/private/" && chmod 700 "$WORK/private"
  refused "data in a folder nobody may enter (not 'no such file')" "private/200.idx.*Permission denied" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$WORK/rbm-for-nobody" train --data "$WORK/private/200.idx" \
    "${small[@]}" --out "$WORK/nobody-run"
fi
finish_cases

# The same small run, killed by a full disk at every kind of write: the file names the
# write, the message says why, and what was complete before stays complete.
full_cfg=(--data "$MNIST" --limit 400 --hidden 16 --batch-size 10 --k 1 --epochs 4 --checkpoint-every 13
          --keep-checkpoints 2 --monitor-every 7 --seed 9)
check_left() {  # check_left DIR WHAT: no temporary file left, every complete file readable
  local f
  compgen -G "$1/checkpoints/*.tmp" > /dev/null && fail "$2: a .tmp file was left behind"
  for f in "$1"/checkpoints/*.h5 "$1/metrics.h5"; do
    [ -e "$f" ] || continue
    "$RBM" info "$f" > /dev/null 2>&1 || fail "$2: $f is not readable after the failure"
  done
}
mnt=$WORK/disk
mkdir -p "$mnt"
trap 'umount "$mnt" 2> /dev/null || true; rm -rf "$WORK"' EXIT   # a failure must not leave a mount behind
if mount -t tmpfs -o size=4k tmpfs "$mnt" 2> /dev/null; then
  umount "$mnt"
  "$RBM" train "${full_cfg[@]}" --out "$WORK/full_ref" > /dev/null
  metric_steps() { $PY -c "import h5py, sys; print(list(h5py.File(sys.argv[1], 'r')['metrics']['step']))" "$1"; }
  ref_steps=$(metric_steps "$WORK/full_ref/metrics.h5")
  for size in 4k 16k 28k 60k 160k 300k 420k; do
    mount -t tmpfs -o size=$size tmpfs "$mnt"
    refused "disk full at $size" "No space left on device" "$RBM" train "${full_cfg[@]}" --out "$mnt/run"
    wait
    check_left "$mnt/run" "disk full at $size"
    mount -o remount,size=20m "$mnt"
    "$RBM" train "${full_cfg[@]}" --resume --out "$mnt/run" > "$WORK/full.log" 2>&1 \
      || { cat "$WORK/full.log"; fail "disk full at $size: no resume after space was freed"; }
    same_datasets "$(newest_checkpoint "$WORK/full_ref")" "$(newest_checkpoint "$mnt/run")" /model/W /chains/hidden
    # A metrics row the disk refused is not left behind as a row of zeros.
    [ "$(metric_steps "$mnt/run/metrics.h5")" = "$ref_steps" ] \
      || fail "disk full at $size: metrics steps $(metric_steps "$mnt/run/metrics.h5"), uninterrupted $ref_steps"
    umount "$mnt"
  done
  echo "ok: after each full disk, the run resumed and ended bitwise equal to an uninterrupted one"
else
  echo "note: cannot mount a tmpfs here; the full disk is tried with RLIMIT_FSIZE only"
fi
# RLIMIT_FSIZE below a checkpoint's size (SIGXFSZ ignored, so write() says EFBIG).
# PMIx's shared-memory store would hit the limit first: hash keeps it in memory.
refused "file size limit (RLIMIT_FSIZE)" "checkpoints/step-0000000013.h5.tmp.*File too large" \
  env PMIX_MCA_gds=hash bash -c 'trap "" XFSZ; ulimit -f 100; exec "$@"' _ "$RBM" train "${full_cfg[@]}" --out "$WORK/fsize"
wait
check_left "$WORK/fsize" "RLIMIT_FSIZE"
finish_cases

echo "== inputs the fuzzers found, replayed through the binary"
replayed=0
no_crash() {  # the binary may accept or refuse, but exits 0, 1 or 2 and never crashes
  local out rc=0
  out=$(timeout 60 "$@" 2>&1) || rc=$?
  [ $rc -le 2 ] || fail "replay $*: exit $rc: $out"
  ! grep -qE "unexpected failure|terminate called|Sanitizer|runtime error:|bad_alloc" <<<"$out" || fail "replay $*: $out"
  replayed=$((replayed + 1))
}
for f in "$SRC"/tests/fuzz/regressions/idx/* "$SRC"/tests/fuzz/corpus/idx/*; do
  [ -f "$f" ] && no_crash "$RBM" train --data "$f" "${small[@]}" --out "$WORK/fz"
  rm -rf "$WORK/fz"
done
# A configuration input's first byte says what the rest is (tests/fuzz/fuzz_config.cpp):
# even, INI text, given as --config; odd, NUL-separated words, given as the command line.
for f in "$SRC"/tests/fuzz/regressions/config/* "$SRC"/tests/fuzz/corpus/config/*; do
  [ -f "$f" ] || continue
  tail -c +2 "$f" > "$WORK/fz.ini"
  if [ $(( $(od -An -tu1 -N1 "$f") % 2 )) = 0 ]; then
    no_crash "$RBM" train --config "$WORK/fz.ini" --out "$WORK/fz" --epochs 1 --limit 100 --k 1 --hidden 4
  else
    mapfile -d '' words < "$WORK/fz.ini"
    mkdir -p "$WORK/fzcwd"
    cd "$WORK/fzcwd"
    no_crash "$RBM" train "${words[@]}" --filters false
    cd - > /dev/null
  fi
  rm -rf "$WORK/fz"
done
echo "ok: $replayed fuzzer inputs replayed without a crash"

[ "$good_before" = "$(snapshot)" ] || fail "the good run's files changed"
echo "ok: the good run's files are unchanged after every refusal"
echo "PASS: $n_inputs distinct bad inputs refused cleanly"
