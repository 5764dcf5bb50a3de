/*
 * hello32: the 32-bit runtime's smallest guest: serial output from 32-bit protected mode
 * (paging off, as the PVH entry leaves it) and power-off. Checks nothing else.
 */
#include "rt.h"

void test_main(void)
{
	printf("hello from the 32-bit khyve test guest\n");
	ok("serial32");
}
