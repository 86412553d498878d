# The metrics file is readable while training writes it: h5py with swmr=True (Debian's
# /usr/bin/python3), both a handle kept open and refreshed and fresh opens, sees the
# table grow, every row complete, steps increasing. After a writer killed with SIGKILL,
# SWMR readers still read it and --resume carries its rows over; after a clean end, plain
# h5py, h5dump and `rbm info` read it. File locking refused (ENOLCK, as on NFS without
# lockd, through an LD_PRELOAD shim): a message naming HDF5_USE_FILE_LOCKING, and with
# HDF5_USE_FILE_LOCKING=FALSE training works.
source "$(dirname "$0")/lib/common.sh"
need_mnist
small=(--data "$MNIST" --limit 2000 --hidden 32 --k 5 --monitor-examples 100 --seed 3
       --monitor-every 5 --filters false --progress-every 0)
run=$WORK/run

cat > "$WORK/reader.py" <<'EOF'
# reader.py METRICS WRITER_PID: read the table while the writer runs; report what was seen.
import os, sys, time
import h5py, numpy as np
path, pid = sys.argv[1], int(sys.argv[2])

def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] not in "ZX"
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or between open and read
        return False

def check(rows, where):
    assert rows.dtype.names[0] == "step" and "pseudo_likelihood" in rows.dtype.names, rows.dtype
    s = rows["step"]
    assert np.all(s > 0), f"{where}: a row without its step (half written?): {s}"
    assert np.all(np.diff(s) > 0), f"{where}: steps not increasing: {s}"
    assert np.all(np.isfinite(rows["pseudo_likelihood"])), f"{where}: non-finite cost"

deadline = time.time() + 120
while not os.path.exists(path):
    assert time.time() < deadline, "no metrics file"
    time.sleep(0.05)
kept = h5py.File(path, "r", swmr=True)      # one handle for the whole run, refreshed
seen, opens = set(), 0
while alive() and time.time() < deadline:
    d = kept["metrics"]
    d.refresh()
    rows = d[:]
    check(rows, "refreshed handle")
    with h5py.File(path, "r", swmr=True) as f:  # and a fresh open each time
        fresh = f["metrics"][:]
        opens += 1
    check(fresh, "fresh open")
    if alive():
        seen.add(len(rows))
    time.sleep(0.05)
print(f"row counts seen while training ran: {len(seen)} distinct, up to {max(seen, default=0)}; "
      f"{opens} fresh opens")
assert len(seen) >= 3, f"the table was not seen growing: {sorted(seen)}"
EOF

# 1. Read while a run writes.
"$RBM" train "${small[@]}" --epochs 25 --out "$run" > "$WORK/run.log" 2>&1 &
writer=$!
$PY "$WORK/reader.py" "$run/metrics.h5" "$writer" || { kill $writer 2>/dev/null; cat "$WORK/run.log"; fail "live read"; }
wait $writer || { cat "$WORK/run.log"; fail "training failed"; }
echo "ok: read metrics.h5 with h5py (swmr=True) while training wrote it"

# 2. After a clean end: plain readers.
$PY -c "import h5py, sys; m = h5py.File(sys.argv[1], 'r')['metrics'][:]; assert len(m) > 100, len(m)" \
  "$run/metrics.h5" || fail "plain h5py read after the run"
h5dump -H "$run/metrics.h5" > /dev/null || fail "h5dump after the run"
"$RBM" info "$run/metrics.h5" | grep -q "rows: " || fail "rbm info after the run"
echo "ok: plain h5py, h5dump and rbm info read it after the run"

# 3. A writer killed mid-run: SWMR readers still read the file; --resume carries it over.
"$RBM" train --resume --epochs 200 --out "$run" > "$WORK/more.log" 2>&1 &
writer=$!
for _ in $(seq 1200); do grep -q "epoch   30/" "$WORK/more.log" && break; sleep 0.1; done
grep -q "epoch   30/" "$WORK/more.log" || { kill $writer; cat "$WORK/more.log"; fail "epoch 30 not reached in 120 s"; }
kill -0 $writer 2> /dev/null || { cat "$WORK/more.log"; fail "the writer ended before it could be killed mid-run"; }
kill -KILL $writer; { wait $writer; } 2>/dev/null || true
$PY -c "import h5py, sys; m = h5py.File(sys.argv[1], 'r', swmr=True)['metrics'][:]; print(f'ok: {len(m)} rows readable after SIGKILL')" \
  "$run/metrics.h5" || fail "SWMR read after SIGKILL"
"$RBM" train --resume --epochs 60 --out "$run" > "$WORK/resume.log" 2>&1 || { cat "$WORK/resume.log"; fail "resume after SIGKILL"; }
$PY - "$run/metrics.h5" <<'EOF' || fail "metrics after resuming a killed run"
import sys, h5py, numpy as np
m = h5py.File(sys.argv[1], "r")["metrics"][:]       # plain open: the file was closed cleanly
s = m["step"]
assert np.all(np.diff(s) > 0), f"steps not increasing: {s}"
assert s[-1] == 60 * 100, s[-1]
print(f"ok: resumed after SIGKILL: {len(m)} rows, steps {s[0]}..{s[-1]}, increasing")
EOF

# 4. File locking refused by the filesystem.
if command -v cc > /dev/null; then
  printf '#include <errno.h>\nint flock(int fd, int op) { (void)fd; (void)op; errno = ENOLCK; return -1; }\n' > "$WORK/nolock.c"
  cc -shared -fPIC -o "$WORK/nolock.so" "$WORK/nolock.c"
  expect_error "flock refused" "HDF5_USE_FILE_LOCKING=FALSE" \
    env LD_PRELOAD="$WORK/nolock.so" "$RBM" train "${small[@]}" --epochs 1 --out "$WORK/nolock"
  rm -rf "$WORK/nolock"
  HDF5_USE_FILE_LOCKING=FALSE LD_PRELOAD="$WORK/nolock.so" "$RBM" train "${small[@]}" --epochs 1 \
    --out "$WORK/nolock" > "$WORK/nolock.log" 2>&1 || { cat "$WORK/nolock.log"; fail "HDF5_USE_FILE_LOCKING=FALSE"; }
  echo "ok: with HDF5_USE_FILE_LOCKING=FALSE it trains where flock fails"
fi
echo "PASS"
