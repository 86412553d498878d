# What the repository promises stays true of the binary: every `rbm train` flag that
# --help lists is in the README's table and every flag in the table is one rbm takes,
# and every shipped configuration (configs/, configs/quality/) starts: its keys, values
# and data paths pass `rbm train --dry-run` from the repository's root.
source "$(dirname "$0")/lib/common.sh"
need_mnist

echo "== README's rbm train table against rbm train --help"
"$RBM" train --help | grep -oE '^  --[a-z0-9-]+' | sed 's/^  //' | sort -u > "$WORK/help.txt"
# The table: the rows of the "### rbm train" section that start with a flag.
awk '/^### rbm train/ {on = 1; next} /^### / {on = 0} on' "$SRC/README.md" \
  | grep -oE '^\| `--[a-z0-9-]+`' | grep -oE -- '--[a-z0-9-]+' | sort -u > "$WORK/readme.txt"
[ -s "$WORK/readme.txt" ] || fail "no flag table found under '### rbm train' in README.md"
# --help is the usage's own flag; the table has no row for it.
missing=$(comm -23 "$WORK/help.txt" "$WORK/readme.txt" | grep -vx -- '--help' || true)
unknown=$(comm -13 "$WORK/help.txt" "$WORK/readme.txt" || true)
[ -z "$missing" ] || fail "flags of rbm train --help without a row in README.md's table: $missing"
[ -z "$unknown" ] || fail "README.md's table has rows for flags rbm train does not take: $unknown"
echo "ok: $(wc -l < "$WORK/readme.txt") flags, each in both"

echo "== every shipped configuration starts (--dry-run)"
# Their data paths are relative to the repository's root, whose data/ may live elsewhere
# (RBM_DATA_DIR): a root of links stands in for it. The first 2,000 rows are enough to
# start on (the readers are tested on whole files elsewhere).
mkdir -p "$WORK/root" && ln -s "$DATA_DIR" "$WORK/root/data"
n=0
for ini in "$SRC"/configs/*.ini "$SRC"/configs/quality/*.ini; do
  name=$(basename "$ini" .ini)
  if grep -q "^data = data/fashion-mnist" "$ini" && [ ! -d "$DATA_DIR/fashion-mnist" ]; then
    echo "skipped ${ini#"$SRC"/}: no Fashion-MNIST in $DATA_DIR (tools/setup.sh installs it)"
    continue
  fi
  if ! (cd "$WORK/root" && "$RBM" train --config "$ini" --device cpu --limit 2000 --out "$WORK/runs/$name" --dry-run) \
      > "$WORK/$name.log" 2>&1; then
    cat "$WORK/$name.log"
    fail "configs: ${ini#"$SRC"/} does not start"
  fi
  grep -q -- "--dry-run: every check passed" "$WORK/$name.log" || fail "${ini#"$SRC"/}: no plan"
  n=$((n + 1))
done
[ ! -e "$WORK/runs" ] || fail "a dry run wrote $(ls "$WORK/runs")"
echo "ok: $n configurations"
echo "PASS"
