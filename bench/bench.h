/* The scenarios of fanout-bench, one per file. Each takes the arguments after
 * its name and returns the exit code. */
#pragma once

int bench_persist(int argc, char **argv);
int bench_fanout(int argc, char **argv);
