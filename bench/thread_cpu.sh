#!/usr/bin/env bash
# thread_cpu.sh PID JOBS: CPU time of each of a process's threads, summed by
# thread name, and per job (user + system, from /proc/PID/task/*/stat).
set -euo pipefail
pid=$1 jobs=$2
tck=$(getconf CLK_TCK)
for t in /proc/"$pid"/task/*; do
  stat=$(cat "$t/stat")
  rest=${stat##*) } # fields after "pid (comm) "
  read -r -a f <<<"$rest"
  echo "$(cat "$t/comm") ${f[11]} ${f[12]}" # utime, stime (fields 14, 15)
done | awk -v tck="$tck" -v n="$jobs" '
  { u[$1] += $2; s[$1] += $3 }
  END { for (k in u) if (u[k] + s[k] > 0)
          printf "   %-13s user %6.2f s  sys %6.2f s  = %6.1f us/job\n", k, u[k] / tck, s[k] / tck,
                 (u[k] + s[k]) / tck * 1e6 / n }' | sort
