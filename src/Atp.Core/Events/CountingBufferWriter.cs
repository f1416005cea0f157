using System.Buffers;

namespace Atp.Core.Events;

/// <summary>Measures what a writer produces without keeping it, stopping once a limit is passed.</summary>
internal sealed class CountingBufferWriter(int limit) : IBufferWriter<byte>
{
    private byte[] _scratch = new byte[256];

    public int Count { get; private set; }

    public void Advance(int count)
    {
        Count += count;
        if (Count > limit)
        {
            throw new LimitExceededException();
        }
    }

    public Memory<byte> GetMemory(int sizeHint = 0) => Scratch(sizeHint);

    public Span<byte> GetSpan(int sizeHint = 0) => Scratch(sizeHint);

    private byte[] Scratch(int sizeHint)
    {
        if (_scratch.Length < sizeHint)
        {
            _scratch = new byte[Math.Max(sizeHint, _scratch.Length * 2)];
        }

        return _scratch;
    }

    public sealed class LimitExceededException : Exception
    {
        public LimitExceededException()
            : base("The output passed its limit.")
        {
        }
    }
}
