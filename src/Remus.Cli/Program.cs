using Remus.Cli;

return RemusCommandLine.Run(args);
