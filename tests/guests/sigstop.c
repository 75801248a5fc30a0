/* sigstop: stops itself with kill(getpid(), SIGSTOP), then raise(SIGTSTP) (blocked around the tgkill by glibc, so delivered on unblock), printing a line after each continue; an ignored SIGTSTP does not stop. In a domain each stop pauses it until unpaused. Run: sigstop (not natively: nothing would continue it). */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    printf("before the stop\n");
    fflush(stdout);
    int rc = kill(getpid(), SIGSTOP);
    printf("continued after SIGSTOP, kill returned %d\n", rc);
    fflush(stdout);
    rc = raise(SIGTSTP);
    printf("continued after SIGTSTP, raise returned %d\n", rc);
    fflush(stdout);
    signal(SIGTSTP, SIG_IGN);
    rc = raise(SIGTSTP);
    printf("an ignored SIGTSTP does not stop, raise returned %d\n", rc);
    return 0;
}
