/* nvmegate: control CLI for nvmegated (commands follow in later commits). */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "nvmegate: no commands yet\n");
	return 1;
}
