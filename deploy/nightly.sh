#!/bin/sh
# kkp-readiness-nightly: one scheduled run of the suite, its comparison with the previous run, and the
# exit-code policy of nightly runs, shared by the image's CronJob and the CI examples (deploy/README.md).
#
# Usage: kkp-readiness-nightly [PYTEST_ARGS...]      (default: -m "not active")
#
#   KKP_READINESS_REPORTS            the reports directory (default: reports); the previous run is the run
#                                    its `latest` link names before this run starts
#   KKP_READINESS_FAIL_ON_WARNINGS   1: a warnings-only run (suite exit 4) fails too (default 0: it passes)
#   KKP_READINESS_FAIL_ON_REGRESSION 0: a regression since the previous run does not fail (default 1: it does)
#   KKP_READINESS_KEEP_ONLY_LATEST   1: afterwards remove every other run directory (those holding a results.json)
#                                    from the reports directory: what CI caches for the next run (default 0)
#   KKP_READINESS_COMMAND            the suite's command (default: kkp-readiness)
#
# Exit code: the suite's (README, "Exit codes"), except 4 (warnings only) -> 0 unless warnings fail, and 1 when
# the suite passed but `kkp-readiness diff` found a regression. A missing previous run, or a diff that cannot
# run, never fails the run: it is reported and skipped.
set -u

reports="${KKP_READINESS_REPORTS:-reports}"
# Absolute: `run --project-dir` changes into the suite's directory before the plugin reads the variable.
mkdir -p "$reports" && reports=$(cd "$reports" && pwd -P) || exit 2
command="${KKP_READINESS_COMMAND:-kkp-readiness}"
export KKP_READINESS_REPORTS="$reports"
[ "$#" -gt 0 ] || set -- -m "not active"

previous=""
if [ -e "$reports/latest/results.json" ]; then
    previous=$(cd "$reports/latest" && pwd -P)
fi

"$command" run --project-dir -- "$@"
suite=$?
echo "kkp-readiness-nightly: the suite exited with $suite"

code=$suite
if [ "$suite" -eq 4 ] && [ "${KKP_READINESS_FAIL_ON_WARNINGS:-0}" != 1 ]; then
    echo "kkp-readiness-nightly: warnings only (4): allowed (KKP_READINESS_FAIL_ON_WARNINGS=1 fails them)"
    code=0
fi

current=""
if [ -e "$reports/latest/results.json" ]; then
    current=$(cd "$reports/latest" && pwd -P)
fi
if [ -z "$previous" ]; then
    echo "kkp-readiness-nightly: no previous run in $reports: nothing to compare"
elif [ -z "$current" ] || [ "$current" = "$previous" ]; then
    echo "kkp-readiness-nightly: this run wrote no results: nothing to compare"
else
    "$command" diff "$previous" "$current"
    compared=$?
    case "$compared" in
        0) echo "kkp-readiness-nightly: no regression since $(basename "$previous")" ;;
        1) echo "kkp-readiness-nightly: regressions since $(basename "$previous")"
           if [ "$code" -eq 0 ] && [ "${KKP_READINESS_FAIL_ON_REGRESSION:-1}" = 1 ]; then code=1; fi ;;
        *) echo "kkp-readiness-nightly: the comparison could not run (exit $compared): not judged" ;;
    esac
fi
if [ "${KKP_READINESS_KEEP_ONLY_LATEST:-0}" = 1 ] && [ -n "$current" ]; then
    for run in "$reports"/*/; do
        run=${run%/}
        if [ ! -L "$run" ] && [ -f "$run/results.json" ] && [ "$(cd "$run" && pwd -P)" != "$current" ]; then
            rm -rf -- "$run"
        fi
    done
fi
echo "kkp-readiness-nightly: exit $code"
exit "$code"
