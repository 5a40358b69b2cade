"""A TCP proxy that can make a server "go down" for the clients behind it."""

import asyncio
import contextlib
from urllib.parse import urlsplit


class TcpProxy:
    """Forwards a local port to a server; ``stop()`` drops every connection and refuses new ones.

    To a client this looks like the server going away (a crash or restart); ``start()`` again
    on the same port brings it back.
    """

    def __init__(self, target: str, default_port: int = 4222) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or default_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def url_for(self, original: str) -> str:
        """``original`` (e.g. a postgresql:// URL) with its host and port replaced by the proxy's."""
        parts = urlsplit(original)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host).geturl()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Registered before the upstream connect, so a stop() meanwhile closes it too: a
        # connection accepted just before the server "went down" must not outlive it.
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            up_writer = None
        if up_writer is None or writer.is_closing():
            if up_writer is not None:
                up_writer.close()
            writer.close()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
