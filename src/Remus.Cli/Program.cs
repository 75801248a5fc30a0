using Remus.Cli;

return RootCheck.Refuse(args) ?? RemusCommandLine.Run(args);
