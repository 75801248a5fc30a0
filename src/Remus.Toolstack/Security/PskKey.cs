using System.Security.Cryptography;

namespace Remus.Toolstack.Security;

/// <summary>
/// Reads a pre-shared key file. A text key (every byte printable ASCII or white space, as `openssl rand -base64 32
/// > FILE` writes it) loses the white space at either end, so an editor's trailing newline gives the same key on both
/// hosts; any other file is a binary key, used byte for byte (`head -c 32 /dev/urandom > FILE`: trimming would cut a
/// random key whose first or last byte happens to be a space or newline). At least 32 bytes must remain; the key is
/// used as it is (HKDF input), never logged.
/// </summary>
internal static class PskKey
{
    public const int MinBytes = 32;

    public static byte[] Read(string? file)
    {
        if (file is null) throw new RemusException("a pre-shared key channel needs --psk-file FILE");
        byte[] raw;
        try { raw = File.ReadAllBytes(file); }
        catch (FileNotFoundException e) { throw new RemusException($"{file}: no such file (the pre-shared key)", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RemusException($"cannot read the pre-shared key {file}: {e.Message}", e);
        }
        int start = 0, end = raw.Length;
        if (raw.All(b => IsSpace(b) || b is >= 0x21 and <= 0x7e))
        {
            while (start < end && IsSpace(raw[start])) start++;
            while (end > start && IsSpace(raw[end - 1])) end--;
        }
        byte[] key = raw[start..end];
        CryptographicOperations.ZeroMemory(raw);
        if (key.Length < MinBytes)
        {
            CryptographicOperations.ZeroMemory(key);
            throw new RemusException($"{file}: a pre-shared key needs at least {MinBytes} bytes of secret (make one with `openssl rand -base64 32 > {file}`)");
        }
        return key;
    }

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';
}
