/* The trivial program for the start-time benchmark. */
int main(void) { return 0; }
