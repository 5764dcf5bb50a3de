/*
 * measure.c: run a command N times and print the median wall time (exec to exit) and the
 * median peak RSS of the child, as "name wall_ms rss_kib exit". Used by bench/run.sh so
 * that khyve and QEMU are measured the same way in the same run.
 *   measure NAME RUNS -- command args...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc < 5 || strcmp(argv[3], "--") != 0) {
		fprintf(stderr, "usage: measure NAME RUNS -- command args...\n");
		return 64;
	}
	int runs = atoi(argv[2]);
	if (runs < 1 || runs > 1000)
		runs = 1;
	double *wall = calloc((size_t)runs, sizeof *wall);
	double *rss = calloc((size_t)runs, sizeof *rss);
	int last_status = 0;

	for (int i = 0; i < runs; i++) {
		struct timespec t0, t1;
		struct rusage ru;
		int status;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		pid_t pid = fork();
		if (pid == 0) {
			int devnull = open("/dev/null", O_RDWR);
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
			execvp(argv[4], &argv[4]);
			_exit(127);
		}
		if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) {
			perror("measure");
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		wall[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		rss[i] = (double)ru.ru_maxrss;
		last_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
	qsort(wall, (size_t)runs, sizeof *wall, cmp_double);
	qsort(rss, (size_t)runs, sizeof *rss, cmp_double);
	printf("%s %.2f %.0f %d\n", argv[1], wall[runs / 2], rss[runs / 2], last_status);
	free(wall);
	free(rss);
	return 0;
}
