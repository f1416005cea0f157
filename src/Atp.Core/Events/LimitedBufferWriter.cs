using System.Buffers;

namespace Atp.Core.Events;

/// <summary>An <see cref="ArrayBufferWriter{T}"/> that refuses to grow past a limit, so oversized input stops early.</summary>
internal sealed class LimitedBufferWriter(int limit, int initialCapacity = 512) : IBufferWriter<byte>
{
    private readonly ArrayBufferWriter<byte> _inner = new(initialCapacity);

    public ReadOnlyMemory<byte> WrittenMemory => _inner.WrittenMemory;

    public void Advance(int count)
    {
        if (_inner.WrittenCount + count > limit)
        {
            throw new LimitExceededException();
        }

        _inner.Advance(count);
    }

    public Memory<byte> GetMemory(int sizeHint = 0) => _inner.GetMemory(sizeHint);

    public Span<byte> GetSpan(int sizeHint = 0) => _inner.GetSpan(sizeHint);

    public sealed class LimitExceededException : Exception
    {
        public LimitExceededException()
            : base("The output passed its limit.")
        {
        }
    }
}
