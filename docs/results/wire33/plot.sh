#!/usr/bin/env bash
# Bytes against accuracy for issue 33's sweeps: one point per strategy, wire
# kind and sync interval (mean over seeds) from the sweeps' results-*.csv
# next to this script, into bytes_vs_accuracy.png (gnuplot).
set -euo pipefail
cd "$(dirname "$0")"
awk -F, 'FNR > 1 && $2 ~ /100mbit/ {
    k = $1 "," $2 "," $3; acc[k] += $9; mb[k] += $12 / 1e6; n[k]++ }
    END { for (k in n) { split(k, p, ","); w = p[2]; sub(/@.*/, "", w); sub(/^default\+?/, "", w);
          if (w == "") w = "fp32"; printf "%s %s-%s/%s %.4f %.3f\n", p[1], p[1], w, p[3],
          100 * acc[k] / n[k], mb[k] / n[k] } }' results-*.csv | sort > bytes_vs_accuracy.dat
gnuplot <<'GP'
set terminal pngcairo size 1000,650
set output "bytes_vs_accuracy.png"
set logscale x
set xlabel "MB psod moved in the run (joins included), log scale"
set ylabel "final test accuracy of the global model (%)"
set title "LeNet-5 MNIST, 4 workers, 2 epochs, 100 Mbit/s links, mean of 3 seeds"
set key off
set grid
plot "bytes_vs_accuracy.dat" using 4:3:2 with labels point pt 7 offset 0.5,0.5 font ",8"
GP
echo "wrote $(pwd)/bytes_vs_accuracy.png"
