#!/usr/bin/env bash
# The README's sharded recipe on a real Slurm: installs Debian's slurm-wlm on this machine (root,
# Debian/Ubuntu), starts a one-node cluster (munged, slurmctld, slurmd), writes 4 shards of 1000
# generated .npy masks, runs the README's array job over them and then its merge as a job that
# depends on it, and checks the merged weights equal a single pass, bit for bit. About a minute
# after the install here; not part of CI (it installs system packages and starts daemons).
#
#   tools/slurm-check.sh            # uses target/release/xent (built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
XENT=$(realpath "${XENT:-target/release/xent}")
[ -x "$XENT" ] || cargo build --release -p xent-cli
if ! command -v slurmctld >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm >/dev/null
fi
work=$(mktemp -d /tmp/xent-slurm.XXXXXX)
host=$(hostname -s)
trap 'scontrol shutdown >/dev/null 2>&1 || true; pkill -x slurmd || true; pkill -x munged || true' EXIT

# 1. The data: /data/masks/shard-K in the README is $work/masks/shard-K here; 19 classes, 255
#    ignored, 64 x 64 uint8 masks.
python3 - "$work/masks" <<'EOF'
import os, random, sys
root = sys.argv[1]
rng = random.Random(18)
header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (64, 64), }"
header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
for shard in range(4):
    os.makedirs(f"{root}/shard-{shard}")
    for i in range(1000):
        data = bytes(rng.choice([0] * 30 + list(range(1, 19)) + [255]) for _ in range(64 * 64))
        with open(f"{root}/shard-{shard}/{i:04d}.npy", "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + data)
EOF

# 2. A one-node cluster.
mkdir -p /etc/slurm /var/spool/slurmd /var/spool/slurmctld /var/log/slurm /run/munge
cat >/etc/slurm/slurm.conf <<EOF
ClusterName=xent-check
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=check Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
[ -s /etc/munge/munge.key ] || mungekey --create --force >/dev/null 2>&1 || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || su -s /bin/sh munge -c /usr/sbin/munged
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 60); do
    sinfo -h -o %t 2>/dev/null | grep -qx idle && break
    sleep 1
done
sinfo

# 3. The README's array job, then its merge (a job that runs once the array has succeeded).
cd "$work"
mkdir counts
array=$(sbatch --parsable --array=0-3 --output=shard-%a.log --wrap \
    "$XENT weights $work/masks/shard-\$SLURM_ARRAY_TASK_ID --classes 19 --save-counts counts/\$SLURM_ARRAY_TASK_ID.json")
sbatch --wait --dependency=afterok:"$array" --output=merge.log --wrap \
    "$XENT weights --counts counts/*.json --scheme median_frequency --format json --output merged.json" >/dev/null
[ "$(ls counts | wc -l)" = 4 ] || { cat ./*.log; echo "slurm-check: expected 4 counts files" >&2; exit 1; }

# 4. One pass over all shards on this machine: the same counts and weights, bit for bit.
"$XENT" weights masks --classes 19 --scheme median_frequency --format json --output single.json
python3 - <<'EOF'
import json
m, s = json.load(open("merged.json")), json.load(open("single.json"))
for k in ["images", "counts", "image_pixels", "ignored", "frequencies", "weights"]:
    assert m[k] == s[k], (k, m[k], s[k])
print(f"slurm-check: {m['images']} masks in 4 array tasks, merged: counts and weights equal a single pass")
EOF
