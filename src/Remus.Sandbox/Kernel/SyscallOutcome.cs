namespace Remus.Sandbox.Kernel;

/// <summary>What the vCPU loop does after a system call was served.</summary>
internal enum SyscallOutcome
{
    /// <summary>rax holds the result; the program goes on.</summary>
    Return,
    /// <summary>The program has ended (<see cref="SandboxKernel.ExitStatus"/>).</summary>
    Exit,
    /// <summary>A blocking call was interrupted (pause, checkpoint): the call is re-executed when the program resumes.</summary>
    Restart,
    /// <summary>
    /// rax holds the result, and the program has stopped itself (SIGSTOP, or SIGTSTP/SIGTTIN/SIGTTOU with the default
    /// action; <see cref="SandboxKernel.StopSignal"/>): it goes on only once continued.
    /// </summary>
    Stop,
    /// <summary>The calling thread has exited (exit, with other threads left): its vCPU and host thread go.</summary>
    ThreadExit,
}
