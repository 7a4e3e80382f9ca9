#!/bin/bash
# One container run, as the build user: build the dependency steps (when this run fills their
# store), wait for the grader's word on stdin ("shared" or "fresh": which build to run; anything
# else, or none, ends the script), build, print the marker with the build's exit code, then (if
# it passed) exec the container with its output on descriptor $3: the grader reads the build
# log and the server log separately.
#
# usage: build_and_serve.sh MARK DEPS_MARK FD ARGV_DIR
# ARGV_DIR holds one command per file (deps, shared, fresh, inspect, run), its words separated
# by NUL bytes; an empty deps file: no dependency build.
mark=$1 deps_mark=$2 fd=$3 dir=$4

words() { mapfile -d '' -t "$1" < "$dir/$1"; }
words deps; words shared; words fresh; words inspect; words run

# The grader kills this script if it dies (even by SIGKILL); each engine command dies with the
# script in turn: an orphaned `docker build` would keep the daemon building.
guard=()
if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
  guard=(setpriv --pdeathsig KILL)
fi

rc=0
if [ "${#deps[@]}" -gt 0 ]; then
  "${guard[@]}" "${deps[@]}" </dev/null 2>&1
  rc=$?
  echo
  echo "$deps_mark $rc"
fi
read -r mode || exit 0
if [ "$mode" = shared ]; then
  [ "$rc" -eq 0 ] && "${guard[@]}" "${shared[@]}" </dev/null 2>&1
  rc=$?
elif [ "$mode" = fresh ]; then
  "${guard[@]}" "${fresh[@]}" </dev/null 2>&1
  rc=$?
else
  exit 0
fi
echo
[ "$rc" -eq 0 ] && echo "GRADER-IMAGE-SIZE $("${inspect[@]}" </dev/null 2>/dev/null)"
echo "$mark $rc"
[ "$rc" -eq 0 ] || exit "$rc"
exec "${guard[@]}" "${run[@]}" </dev/null 1>&"$fd" 2>&"$fd"
